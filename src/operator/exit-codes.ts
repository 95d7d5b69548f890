/**
 * What the operator commands' exit codes mean (README "Operating it"):
 *   0  done / every check passed
 *   1  a check failed, or nothing matched / the action was not allowed (already sent, not failed, …)
 *   2  configuration or usage error (a bad setting, a bad argument)
 *   3  a dependency did not answer (PostgreSQL, Evolution)
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A command's failure with the exit code it means and a stable machine code for `--json`. */
export class OperatorError extends Error {
  override name = 'OperatorError';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly code: string,
  ) {
    super(message);
  }
}
