/**
 * The OpenAPI contract in tests: `validateDocument` checks a document against the OpenAPI 3.1 schema
 * (@seriousme/openapi-schema-validator), and `Contract` checks a real response (status, content type,
 * body) against the response its operation declares, with Ajv for JSON Schema 2020-12.
 * Use from any e2e test: `const contract = await Contract.of(host.url)`, then `await contract.fetch(url, init)`
 * instead of `fetch`; it throws naming the operation and every mismatch.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

const ROOT = path.resolve(__dirname, '../..');

type Json = Record<string, any>;

/**
 * The validator is an ES module, which jest's CommonJS runtime cannot load: it runs in a child node
 * process, reading the document on stdin.
 */
export function validateDocument(doc: unknown): Promise<{ valid: boolean; errors?: unknown }> {
  const script =
    "import { Validator } from '@seriousme/openapi-schema-validator';" +
    "let text = ''; process.stdin.on('data', (d) => (text += d));" +
    "process.stdin.on('end', async () => { const v = new Validator(); const r = await v.validate(JSON.parse(text));" +
    'process.stdout.write(JSON.stringify({ valid: r.valid, errors: r.errors, version: v.version })); });';
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as { valid: boolean; errors?: unknown });
      },
    );
    child.stdin!.end(JSON.stringify(doc));
  });
}

export interface CheckedResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON for JSON media types, else the bytes. */
  readonly body: any;
  /** The operation that answered, e.g. `getJob`. */
  readonly operationId: string;
}

const SCHEMA_BASE = 'https://contract.test/components/schemas/';
const mediaTypeOf = (contentType: string | null) => (contentType ?? '').split(';')[0].trim().toLowerCase();
const isJson = (mediaType: string) => mediaType === 'application/json' || mediaType.endsWith('+json');

/** `#/components/schemas/X` → an id Ajv knows, everywhere in a schema. */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', SCHEMA_BASE) : rewriteRefs(v),
      ]),
    );
  return value;
}

export class Contract {
  private readonly ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true, strict: true });
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly basePath: string;
  /** Every operation the tests exercised, by operationId, with the statuses seen. */
  readonly seen = new Map<string, Set<number>>();

  constructor(readonly doc: Json) {
    addFormats(this.ajv);
    for (const [name, schema] of Object.entries<Json>(doc.components?.schemas ?? {}))
      this.ajv.addSchema({ ...(rewriteRefs(schema) as Json), $id: `${SCHEMA_BASE}${name}` });
    this.basePath = new URL(doc.servers[0].url as string).pathname.replace(/\/+$/, '');
  }

  /** The app's own document, read from `<apiBase>/openapi.json`. */
  static async of(apiBase: string): Promise<Contract> {
    const res = await fetch(`${apiBase}/openapi.json`);
    if (res.status !== 200) throw new Error(`GET ${apiBase}/openapi.json answered ${res.status}`);
    return new Contract((await res.json()) as Json);
  }

  /** The operation for a method and URL, by the document's path templates. */
  operation(method: string, url: string): { path: string; op: Json } {
    const pathname = new URL(url).pathname;
    if (!pathname.startsWith(`${this.basePath}/`)) throw new Error(`${url} is not under the server ${this.basePath}`);
    const rel = pathname.slice(this.basePath.length);
    for (const [template, item] of Object.entries<Json>(this.doc.paths)) {
      const pattern = new RegExp(`^${template.replace(/[.+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}$`);
      const op = item[method.toLowerCase()] as Json | undefined;
      if (op && pattern.test(rel)) return { path: template, op };
    }
    throw new Error(`the document has no operation for ${method.toUpperCase()} ${rel}`);
  }

  private validator(schema: Json): ValidateFunction {
    const key = JSON.stringify(schema);
    let fn = this.compiled.get(key);
    if (!fn) {
      fn = this.ajv.compile(rewriteRefs(schema) as Json);
      this.compiled.set(key, fn);
    }
    return fn;
  }

  /** Every way the response differs from what the operation declares (empty: it conforms). */
  problems(method: string, url: string, status: number, contentType: string | null, body: Buffer): string[] {
    const { op } = this.operation(method, url);
    const declared = (op.responses[String(status)] ??
      op.responses[`${String(status)[0]}XX`] ??
      op.responses.default) as Json | undefined;
    if (!declared) return [`status ${status} is not declared (declared: ${Object.keys(op.responses).join(', ')})`];
    const content = declared.content as Record<string, Json> | undefined;
    if (!content) return body.length === 0 ? [] : [`status ${status} declares no body but ${body.length} bytes came`];
    const type = mediaTypeOf(contentType);
    const match = Object.keys(content).find(
      (range) => range === type || (range.endsWith('/*') && type.startsWith(range.slice(0, -1))),
    );
    if (!match)
      return [
        `content type ${contentType ?? 'none'} is not declared for ${status} (${Object.keys(content).join(', ')})`,
      ];
    const schema = content[match].schema as Json | undefined;
    if (!schema) return body.length > 0 ? [] : [`status ${status} declares a ${match} body but none came`];
    if (!isJson(type))
      return typeof schema.type === 'string' && schema.type !== 'string' ? [`${type} is not JSON`] : [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return [`the ${type} body is not JSON: ${body.toString('utf8').slice(0, 200)}`];
    }
    const validate = this.validator(schema);
    if (validate(parsed)) return [];
    return (validate.errors ?? []).map((e) => `body${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  }

  /** `fetch` (redirects not followed) whose answer must conform; throws naming the operation and the mismatches. */
  async fetch(url: string, init: RequestInit = {}): Promise<CheckedResponse> {
    const method = (init.method ?? 'GET').toUpperCase();
    const res = await fetch(url, { redirect: 'manual', ...init });
    const bytes = Buffer.from(await res.arrayBuffer());
    const { op } = this.operation(method, url);
    const found = this.problems(method, url, res.status, res.headers.get('content-type'), bytes);
    if (found.length)
      throw new Error(
        `${method} ${url} (${String(op.operationId)}) answered ${res.status} ${res.headers.get('content-type') ?? ''} ` +
          `against the contract:\n  ${found.join('\n  ')}\nbody: ${bytes.toString('utf8').slice(0, 500)}`,
      );
    const seen = this.seen.get(op.operationId as string) ?? new Set<number>();
    seen.add(res.status);
    this.seen.set(op.operationId as string, seen);
    const type = mediaTypeOf(res.headers.get('content-type'));
    const body = isJson(type) && bytes.length ? JSON.parse(bytes.toString('utf8')) : bytes;
    return { status: res.status, headers: res.headers, body, operationId: op.operationId as string };
  }
}
