/**
 * The contract every route file fulfils. build-app registers a list of these, so
 * adding a feature's routes is one entry in that list, and /openapi.json is
 * assembled from the same list, so a route cannot ship undocumented.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Context } from '../context.js';
import type { AuthFailures } from './auth.js';

/** A fragment of an OpenAPI 3.1 document (kept loose: it is data we serve, not code we call). */
export type OpenApiObject = Record<string, unknown>;

export interface RoutePluginOptions {
  ctx: Context;
  /** Every module the app registers (the meta routes describe them all). */
  routes: readonly RouteModule[];
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
  openapi: {
    /**
     * Path items keyed by OpenAPI path (`/v1/followups/{id}`): operations by method
     * (the document adds security, 401 and 500 to each), and optional shared `parameters`.
     */
    paths: Record<string, Record<string, unknown>>;
    /** Schemas this module adds to `components.schemas`. */
    schemas?: Record<string, OpenApiObject>;
  };
}
