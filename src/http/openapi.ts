/**
 * The OpenAPI 3.1 document, generated: @fastify/swagger collects every route the
 * app registers (so a route cannot ship undocumented, nor a documented path be
 * missing), and each route's `schema` gives the zod schemas its handler validates
 * with (body, querystring, params, headers), turned into JSON Schema by
 * z.toJSONSchema, plus a summary and its `answers` (status → description and, where
 * declared, a zod schema). The route module's `auth` adds the security and the 401.
 *
 * Fastify does not validate with these schemas a second time: the handler (or the
 * domain function it calls) parses with the same schema object, which keeps the
 * error answers and the parsing order exactly as they were.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { z } from 'zod';

/** A fragment of an OpenAPI 3.1 document (kept loose: it is data we serve, not code we call). */
export type OpenApiObject = Record<string, unknown>;

/** The error answers every route shares (`components.responses`). */
const ERROR_ANSWERS = {
  BadRequest: 'Invalid request; the message and details name the field',
  Unauthorized: 'Missing or invalid bearer token',
  NotFound: 'No such resource',
  Conflict: 'The request conflicts with the current state (code says how)',
  PayloadTooLarge: 'Body larger than 1 MiB',
  UnsupportedMediaType: 'Body is not application/json',
  InternalError: 'Internal error (details are logged, never returned)',
} as const;
export type ErrorAnswer = keyof typeof ERROR_ANSWERS;

/** One documented answer: a shared error, or a description with an optional body schema. */
export type Answer = ErrorAnswer | { description: string; schema?: z.ZodType; contentType?: string };

declare module 'fastify' {
  interface FastifySchema {
    /** The answers /openapi.json documents, by status code (documentation only: nothing is validated or serialized with them). */
    answers?: Record<number, Answer>;
  }
}

/** `{description, schema}` for an answer with a JSON body. */
export const answer = (description: string, schema?: z.ZodType, contentType?: string): Answer => ({ description, schema, contentType });

/** The error envelope every 4xx and 5xx carries. */
export const errorSchema = z.object({
  error: z.object({
    code: z.string().describe('machine-readable: validation_error, unauthorized, not_found, not_cancellable, ...'),
    message: z.string().describe('for people; on 400 it names the offending field'),
    details: z
      .array(z.object({ field: z.string(), message: z.string() }))
      .optional()
      .describe('validation errors: one entry per offending field'),
  }),
});

/** Schemas published under `components.schemas` by name (and referenced there from operations). */
const named = new Map<z.ZodType, string>();
export function component<S extends z.ZodType>(name: string, schema: S): S {
  named.set(schema, name);
  return schema;
}
component('Error', errorSchema);

const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** JSON Schema (2020-12, as OpenAPI 3.1 uses) of a zod schema: what it accepts (requests) or gives (answers). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'input'): OpenApiObject {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as OpenApiObject;
  return rest;
}

/** A named schema by reference, any other inline. */
const schemaOf = (schema: z.ZodType, io: 'input' | 'output') => {
  const name = named.get(schema);
  return name ? schemaRef(name) : jsonSchemaOf(schema, io);
};

function toResponse(value: Answer): OpenApiObject {
  if (typeof value === 'string') {
    return { description: ERROR_ANSWERS[value], content: { 'application/json': { schema: schemaRef('Error') } } };
  }
  if (!value.schema) return { description: value.description };
  return { description: value.description, content: { [value.contentType ?? 'application/json']: { schema: schemaOf(value.schema, 'output') } } };
}

const OPTIONAL_BODY = 'x-optional-body';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

interface TransformInput {
  schema: Record<string, unknown> | undefined;
  url: string;
}

/** A route's `schema` (zod) as @fastify/swagger's JSON Schema. */
function transform({ schema, url }: TransformInput) {
  const { body, querystring, params, headers, answers, ...rest } = (schema ?? {}) as Record<string, unknown> & { answers?: Record<string, Answer> };
  const out: Record<string, unknown> = { ...rest };
  if (body) {
    out.body = schemaOf(body as z.ZodType, 'input');
    // @fastify/swagger marks every body required; transformObject corrects the optional ones.
    if ((body as z.ZodType).safeParse(undefined).success) out[OPTIONAL_BODY] = true;
  }
  if (querystring) out.querystring = jsonSchemaOf(querystring as z.ZodType);
  if (params) out.params = jsonSchemaOf(params as z.ZodType);
  if (headers) out.headers = jsonSchemaOf(headers as z.ZodType);
  const all: Record<string, Answer> = { ...answers };
  // Every route can fail internally; every bearer route can be refused.
  if (Array.isArray(rest.security) && rest.security.length > 0) all['401'] ??= 'Unauthorized';
  all['500'] ??= 'InternalError';
  out.response = Object.fromEntries(Object.entries(all).map(([status, value]) => [status, toResponse(value)]));
  return { schema: out, url };
}

/** Named schemas and shared answers into `components`. */
function transformObject({ openapiObject }: { openapiObject: Partial<OpenApiObject> }) {
  const components = (openapiObject.components ?? {}) as Record<string, Record<string, unknown>>;
  const schemas: Record<string, unknown> = { ...components.schemas };
  for (const [schema, name] of named) schemas[name] = jsonSchemaOf(schema);
  const responses = Object.fromEntries(Object.keys(ERROR_ANSWERS).map((name) => [name, toResponse(name as ErrorAnswer)]));
  for (const item of Object.values((openapiObject.paths ?? {}) as Record<string, Record<string, Record<string, unknown>>>)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!METHODS.includes(method) || !operation[OPTIONAL_BODY]) continue;
      delete operation[OPTIONAL_BODY];
      (operation.requestBody as { required: boolean }).required = false;
    }
  }
  return { ...openapiObject, components: { ...components, schemas, responses } };
}

/** Registers the generator; `app.swagger()` then returns the document (the meta routes serve it). */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
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
      },
    },
    transform: transform as never,
    transformObject: transformObject as never,
  });
  // The route schemas are zod objects for the document; the handlers parse with them themselves.
  app.setValidatorCompiler(() => () => true);
}

/**
 * Tags a module's routes with its name and its security (bearer for `auth: 'bearer'`,
 * public otherwise): an onRoute hook on the module's own scope.
 */
export function documentModule(scope: FastifyInstance, module: { name: string; auth: 'bearer' | 'none' }): void {
  scope.addHook('onRoute', (route: RouteOptions) => {
    route.schema = {
      tags: [module.name],
      ...route.schema,
      security: module.auth === 'bearer' ? [{ bearerAuth: [] }] : [],
    };
  });
}

/** The `:phone` path parameter of the lead routes. */
export const phoneParams = z.object({
  phone: z.string().describe('any spelling: 5581999998888, 558199998888, +55 81 99999-8888'),
});
/** A `:id` path parameter. */
export const idParams = z.object({ id: z.uuid() });
