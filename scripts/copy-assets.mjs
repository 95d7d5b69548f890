// Copies the non-TypeScript files the compiled service reads at run time
// (SQL migrations) next to the compiled code in dist/.
import { cpSync, existsSync, mkdirSync } from 'node:fs';

mkdirSync('dist/db/migrations', { recursive: true });
cpSync('src/db/migrations', 'dist/db/migrations', { recursive: true });
if (existsSync('src/campaigns/definitions')) {
  cpSync('src/campaigns/definitions', 'dist/campaigns/definitions', { recursive: true });
}
