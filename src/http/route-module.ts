/**
 * The contract every route file fulfils. build-app registers a list of these, so
 * adding a feature's routes is one entry in that list. /openapi.json is generated
 * from the routes themselves (openapi.ts): give each route a `schema` with its
 * summary, the zod schemas its handler parses with, and its `answers`.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Context } from '../context.js';
import type { AuthFailures } from './auth.js';

export interface RoutePluginOptions {
  ctx: Context;
  /** Per-address budget of failed authentications, for modules that authenticate callers themselves. */
  authFailures: AuthFailures;
}

export interface RouteModule {
  name: string;
  /**
   * 'bearer': every route needs `Authorization: Bearer <FOLLOWUPS_API_TOKEN>` (the /v1 API).
   * 'none': public, or authenticated by the module itself (webhooks carry their own secret).
   */
  auth: 'bearer' | 'none';
  plugin: FastifyPluginAsync<RoutePluginOptions>;
}
