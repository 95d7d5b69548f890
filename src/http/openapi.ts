/**
 * Assembles the OpenAPI 3.1 document from the route modules. Request schemas
 * come from the same zod schemas that validate requests (z.toJSONSchema), so the
 * description cannot drift from what the API accepts; responses are written by hand.
 */
import { z } from 'zod';
import type { OpenApiObject, RouteModule } from './route-module.js';

/** JSON Schema (2020-12, as OpenAPI 3.1 uses) of what a zod schema accepts as input. */
export function jsonSchemaOf(schema: z.ZodType): OpenApiObject {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as OpenApiObject;
  return rest;
}

/** One `in: query` parameter per property of a zod object schema. */
export function queryParametersOf(schema: z.ZodType): OpenApiObject[] {
  const json = jsonSchemaOf(schema) as { properties?: Record<string, OpenApiObject>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: 'query',
    required: json.required?.includes(name) ?? false,
    schema: property,
  }));
}

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const errorRef = (name: 'BadRequest' | 'NotFound' | 'Conflict' | 'PayloadTooLarge' | 'UnsupportedMediaType') => ({
  $ref: `#/components/responses/${name}`,
});
export const json = (schema: OpenApiObject, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

const errorResponse = (description: string) => json(ref('Error'), description);

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'machine-readable: validation_error, unauthorized, not_found, not_cancellable, ...' },
        message: { type: 'string', description: 'for people; on 400 it names the offending field' },
        details: {
          type: 'array',
          description: 'validation errors: one entry per offending field',
          items: {
            type: 'object',
            required: ['field', 'message'],
            properties: { field: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
  },
} as const;

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

export function buildOpenApiDocument(routes: readonly RouteModule[]): OpenApiObject {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Record<string, OpenApiObject> = { Error: ERROR_SCHEMA };
  for (const route of routes) {
    Object.assign(schemas, route.openapi.schemas);
    for (const [path, item] of Object.entries(route.openapi.paths)) {
      const target = (paths[path] ??= {});
      for (const [method, value] of Object.entries(item)) {
        if (!METHODS.includes(method)) {
          target[method] = value;
          continue;
        }
        const operation = value as OpenApiObject;
        const responses = { ...(operation.responses as OpenApiObject | undefined) };
        // Every route can fail internally; every bearer route can be refused.
        if (route.auth === 'bearer') responses['401'] ??= { $ref: '#/components/responses/Unauthorized' };
        responses['500'] ??= { $ref: '#/components/responses/InternalError' };
        target[method] = {
          tags: [route.name],
          ...operation,
          ...(route.auth === 'bearer' ? { security: [{ bearerAuth: [] }] } : { security: [] }),
          responses,
        };
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'nautico-followups',
      version: '1.0.0',
      description:
        'Schedules WhatsApp follow-ups for the Náutico sales agent and sends each one at the right time, exactly once. ' +
        'Errors are `{"error": {"code", "message", "details"?}}`; times are ISO-8601 UTC.',
    },
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'FOLLOWUPS_API_TOKEN' },
      },
      schemas,
      responses: {
        BadRequest: errorResponse('Invalid request; the message and details name the field'),
        Unauthorized: errorResponse('Missing or invalid bearer token'),
        NotFound: errorResponse('No such resource'),
        Conflict: errorResponse('The request conflicts with the current state (code says how)'),
        PayloadTooLarge: errorResponse('Body larger than 1 MiB'),
        UnsupportedMediaType: errorResponse('Body is not application/json'),
        InternalError: errorResponse('Internal error (details are logged, never returned)'),
      },
    },
    paths,
  };
}

/** The `:phone` path parameter of the lead routes. */
export const phoneParameter = {
  name: 'phone',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: 'any spelling: 5581999998888, 558199998888, +55 81 99999-8888',
};
