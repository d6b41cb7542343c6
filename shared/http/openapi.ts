/**
 * GET /api/openapi.json: the OpenAPI 3.1 document of this app, generated at request time from the
 * HTTP functions this process registered (route, methods, auth level: shared/http/app.ts), what each
 * one means (openapi-operations.ts) and the schemas built from the filter catalog, the error registry
 * and the capability table (openapi-schemas.ts). `servers` is the origin and route prefix the request
 * came through, so a client generated from it calls the deployment it was read from.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { version } from '../../package.json';
import { appSettings, type Settings } from '../config';
import { httpRoutes, type HttpRoute } from './app';
import { OPERATIONS, problem, type OperationSpec, type ParameterSpec } from './openapi-operations';
import { componentSchemas, type Schema } from './openapi-schemas';
import { handled, json } from './respond';

/** The route the document is served at; `servers` is the request URL without it. */
export const OPENAPI_ROUTE = 'openapi.json';

/** How each auth level is called: a function key, or the master key, in the header or the `code` query parameter. */
const SECURITY: Record<HttpRoute['authLevel'], Record<string, string[]>[]> = {
  anonymous: [],
  function: [{ functionKey: [] }, { functionKeyQuery: [] }],
  admin: [{ masterKey: [] }, { masterKeyQuery: [] }],
};

const SECURITY_SCHEMES = {
  functionKey: {
    type: 'apiKey',
    in: 'header',
    name: 'x-functions-key',
    description: 'A function key of the app (the master key is accepted too).',
  },
  functionKeyQuery: { type: 'apiKey', in: 'query', name: 'code', description: 'A function key as the code parameter.' },
  masterKey: {
    type: 'apiKey',
    in: 'header',
    name: 'x-functions-key',
    description: "The host's master key: admin routes change or delete other people's work.",
  },
  masterKeyQuery: { type: 'apiKey', in: 'query', name: 'code', description: 'The master key as the code parameter.' },
};

const TAGS: Record<string, string> = {
  service: 'Health, the filter catalog and this document (no key)',
  jobs: 'Submitting jobs and following them',
  tasks: 'Task records and results',
  images: 'The images container (inputs)',
  metrics: 'Metrics snapshots, scaling advice and the worker registry',
  'dead letters': 'Tasks that ran out of retries',
  admin: 'Destructive operations (master key)',
  dashboard: 'The live dashboard (static files, no data)',
};

/** `jobs/{job_id}` → `/jobs/{job_id}`; constraints, defaults and catch-all marks are dropped (`{id:int?}` → `{id}`). */
export function openApiPath(route: string): string {
  return `/${route.replace(/^\/+/, '').replace(/\{\*{0,2}([A-Za-z_]\w*)[^}]*\}/g, '{$1}')}`;
}

const templateParams = (path: string): string[] => [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);

function parameters(path: string, op: OperationSpec): (ParameterSpec | Schema)[] {
  const inPath = templateParams(path).map((name) => ({
    name,
    in: 'path',
    required: true,
    description: op.path?.[name]?.description ?? name,
    schema: op.path?.[name]?.schema ?? { type: 'string' },
  }));
  return [...inPath, ...(op.parameters ?? [])];
}

function operation(route: HttpRoute, method: string, path: string, op: OperationSpec) {
  const keyed = route.authLevel !== 'anonymous';
  const responses = {
    ...op.responses,
    ...(keyed
      ? {
          '401': {
            description: `No ${route.authLevel === 'admin' ? 'master' : 'function'} key, or a wrong one (the host answers with no body).`,
          },
        }
      : {}),
    '500': problem(500, 'An unexpected failure: the detail names the invocation to look up in the logs.'),
    ...(op.storage
      ? {
          '503': {
            ...problem(503, 'Storage did not answer within the request budget; retry after Retry-After seconds.'),
            headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } } },
          },
        }
      : {}),
  };
  const params = parameters(path, op);
  return {
    operationId: route.methods.length > 1 ? `${route.name}${method[0]}${method.slice(1).toLowerCase()}` : route.name,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    security: SECURITY[route.authLevel],
    ...(params.length ? { parameters: params } : {}),
    ...(op.requestBody
      ? {
          requestBody: {
            required: true,
            description: op.requestBody.description,
            content: Object.fromEntries(
              Object.entries(op.requestBody.content).map(([type, schema]) => [type, { schema }]),
            ),
          },
        }
      : {}),
    responses: Object.fromEntries(
      Object.entries(responses)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([status, r]) => [
          status,
          {
            description: r.description,
            ...('headers' in r && r.headers ? { headers: r.headers } : {}),
            ...('content' in r && r.content
              ? {
                  content: Object.fromEntries(
                    Object.entries(r.content).map(([type, schema]) => [
                      type,
                      Object.keys(schema).length ? { schema } : {},
                    ]),
                  ),
                }
              : {}),
          },
        ]),
    ),
  };
}

/** The document for these registrations, served from `serverUrl` (origin + route prefix). */
export function openApiDocument(routes: readonly HttpRoute[], serverUrl: string, settings: Settings = appSettings()) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of [...routes].sort((a, b) => a.route.localeCompare(b.route))) {
    const op = OPERATIONS[route.name];
    if (!op) continue; // tests/functions/openapi.test.ts fails for it: the document only says what is written down
    const path = openApiPath(route.route);
    for (const method of route.methods) (paths[path] ??= {})[method.toLowerCase()] = operation(route, method, path, op);
  }
  const used = new Set(Object.values(OPERATIONS).map((op) => op.tag));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Image pipeline',
      version,
      description:
        'A serverless image pipeline on Azure Functions: submit images with a filter pipeline, follow the jobs, fetch the ' +
        'results. JSON fields are snake_case; errors are RFC 9457 application/problem+json whose `type` names the error code.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    servers: [{ url: serverUrl }],
    tags: Object.entries(TAGS)
      .filter(([name]) => used.has(name))
      .map(([name, description]) => ({ name, description })),
    paths,
    components: { schemas: componentSchemas(settings), securitySchemes: SECURITY_SCHEMES },
  };
}

export type OpenApiDocument = ReturnType<typeof openApiDocument>;

/** The base URL clients call: the request URL without /openapi.json, e.g. `https://app.azurewebsites.net/api`. */
export function serverUrlOf(requestUrl: string): string {
  const url = new URL(requestUrl);
  return `${url.origin}${url.pathname.replace(new RegExp(`/${OPENAPI_ROUTE.replace('.', '\\.')}$`, 'i'), '')}`;
}

export function openApiRoutes(routes: () => readonly HttpRoute[] = httpRoutes, settings: Settings = appSettings()) {
  return {
    openapi: handled((request: HttpRequest): HttpResponseInit =>
      json(200, openApiDocument(routes(), serverUrlOf(request.url), settings), { 'cache-control': 'no-cache' }),
    ),
  };
}
