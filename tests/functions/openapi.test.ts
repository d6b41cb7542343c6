/**
 * GET /api/openapi.json as the host serves it: the built function files loaded the way the local host
 * loads them (package.json main → @azure/functions → the @azure/functions-core stand-in), the
 * registered `openapi` handler called, and its document checked: valid OpenAPI 3.1 (a real validator),
 * one operation per registered HTTP route and method with the key its auth level takes, nothing
 * documented that is not registered, and the filter catalog, limits and error codes in its schemas.
 * Needs the build (npm run build).
 */
import path from 'node:path';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { ERROR_CODES } from '../../shared/errors';
import { filterCatalog } from '../../shared/imaging/catalog';
import { appSettings } from '../../shared/config';
import { functionFiles, loadFunctions } from '../../scripts/local-host/loader';
import type { RegisteredFunction } from '../../scripts/local-host/functions-core';
import { Contract, validateDocument } from '../helpers/openapi';

jest.mock('@azure/functions-core', () => jest.requireActual('../../scripts/local-host/functions-core').functionsCore, {
  virtual: true,
});

const ROOT = path.resolve(__dirname, '../..');
const ORIGIN = 'https://images.example.net';
let functions: readonly RegisteredFunction[];
let doc: any;
let response: HttpResponseInit;

beforeAll(async () => {
  functions = loadFunctions(functionFiles(ROOT));
  const openapi = functions.find((f) => f.name === 'openapi');
  if (!openapi) throw new Error('no function named openapi is registered');
  const request = new HttpRequest({ url: `${ORIGIN}/api/openapi.json`, method: 'GET' });
  response = (await openapi.handler(request, new InvocationContext())) as HttpResponseInit;
  doc = response.jsonBody;
});

const http = () => functions.filter((f) => f.trigger.type === 'httpTrigger');
const SCHEMES: Record<string, unknown[]> = {
  anonymous: [],
  function: [{ functionKey: [] }, { functionKeyQuery: [] }],
  admin: [{ masterKey: [] }, { masterKeyQuery: [] }],
};

describe('GET /api/openapi.json', () => {
  it('answers 200 JSON with the request origin and route prefix as its server', () => {
    expect(response.status).toBe(200);
    expect((response.headers as Record<string, string>)['content-type']).toMatch(/^application\/json/);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.servers).toEqual([{ url: `${ORIGIN}/api` }]);
  });

  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    const result = await validateDocument(doc);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it('documents every registered HTTP route and method, with the key its auth level takes', () => {
    // from the registrations the host received, not from the document's own list: a route registered
    // without an entry in shared/http/openapi-operations.ts, or through @azure/functions' app directly
    // (bypassing shared/http/app.ts), has no operation and fails here
    const missing: string[] = [];
    for (const f of http()) {
      const route = `/${String(f.trigger.route ?? f.name).replace(/\{(\w+)[^}]*\}/g, '{$1}')}`;
      for (const method of f.trigger.methods ?? []) {
        const op = doc.paths[route]?.[String(method).toLowerCase()];
        if (!op) {
          missing.push(`${f.name}: ${String(method)} ${route}`);
          continue;
        }
        expect([f.name, op.operationId, op.security]).toEqual([f.name, f.name, SCHEMES[String(f.trigger.authLevel)]]);
      }
    }
    expect(missing).toEqual([]);
  });

  it('documents nothing that is not registered', () => {
    const registered = new Set(
      http().flatMap((f) =>
        (f.trigger.methods ?? []).map((m) => `${String(m).toLowerCase()} ${String(f.trigger.route ?? f.name)}`),
      ),
    );
    const documented = Object.entries<Record<string, unknown>>(doc.paths).flatMap(([p, item]) =>
      Object.keys(item).map((m) => `${m} ${p.slice(1)}`),
    );
    expect(documented.filter((d) => !registered.has(d))).toEqual([]);
    expect(documented.length).toBe(registered.size);
  });

  it('gives every keyed operation a 401 and every operation a problem+json 500', () => {
    for (const item of Object.values<Record<string, any>>(doc.paths))
      for (const op of Object.values<any>(item)) {
        expect([op.operationId, Object.keys(op.responses).includes('401')]).toEqual([
          op.operationId,
          op.security.length > 0,
        ]);
        expect(op.responses['500'].content['application/problem+json'].schema).toEqual({
          $ref: '#/components/schemas/Problem500',
        });
      }
  });

  it('describes every filter and parameter of the catalog, with its range and default, as the pipeline body', () => {
    const schemas = doc.components.schemas;
    const catalog = filterCatalog(appSettings());
    expect(schemas.Filter.oneOf[0].enum).toEqual(catalog.map((f) => f.name));
    for (const f of catalog) {
      const schema = schemas[`Filter_${f.name}`];
      expect(Object.keys(schema.properties)).toEqual(['name', ...Object.keys(f.params)]);
      for (const [name, p] of Object.entries(f.params)) {
        const s = schema.properties[name];
        if (p.min !== undefined) expect([name, s.minimum, s.maximum]).toEqual([name, p.min, p.max]);
        if (p.enum) expect(s.enum).toEqual([...p.enum, null]); // a request may send null: the default
        if (p.default !== undefined) expect(s.default).toEqual(p.default);
      }
    }
    expect(schemas.SubmitJobRequest.properties.images.maxItems).toBe(appSettings().maxImagesPerJob);
    expect(schemas.SubmitJobRequest.properties.filters.maxItems).toBe(appSettings().maxFiltersPerTask);
    expect(doc.paths['/jobs'].post.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/SubmitJobRequest',
    });
  });

  it('lists every error code as a problem type, each status allowing only its own codes', () => {
    const types: string[] = doc.components.schemas.Problem.properties.type.enum;
    expect(types).toEqual(
      expect.arrayContaining(Object.keys(ERROR_CODES).map((c) => `urn:image-pipeline:problem:${c}`)),
    );
    for (const [code, { status }] of Object.entries(ERROR_CODES))
      expect(doc.components.schemas[`Problem${status}`].properties.type.enum).toContain(
        `urn:image-pipeline:problem:${code}`,
      );
  });

  it('checks a response against its operation: a conforming one passes, a drifted one is named', () => {
    const contract = new Contract(doc);
    const url = `${ORIGIN}/api/jobs/0b6f4c1e-8d3a-4c57-9a51-2f1e0c9d7a11`;
    const problem = {
      type: 'urn:image-pipeline:problem:not_found',
      title: 'Not found',
      status: 404,
      detail: 'No job 0b6f4c1e-8d3a-4c57-9a51-2f1e0c9d7a11',
    };
    const body = (v: unknown) => Buffer.from(JSON.stringify(v));
    expect(contract.problems('GET', url, 404, 'application/problem+json; charset=utf-8', body(problem))).toEqual([]);
    // a code of another status, an unknown field, an undeclared status, a wrong content type
    expect(
      contract.problems(
        'GET',
        url,
        404,
        'application/problem+json',
        body({ ...problem, type: 'urn:image-pipeline:problem:not_ready' }),
      ),
    ).not.toEqual([]);
    expect(contract.problems('GET', url, 404, 'application/problem+json', body({ ...problem, extra: 1 }))).not.toEqual(
      [],
    );
    expect(contract.problems('GET', url, 418, 'application/problem+json', body(problem))).toEqual([
      expect.stringMatching(/^status 418 is not declared/),
    ]);
    expect(contract.problems('GET', url, 404, 'text/html', body(problem))).toEqual([
      expect.stringMatching(/^content type text\/html is not declared/),
    ]);
  });
});
