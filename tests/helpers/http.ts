/** Calls a route handler the way the Functions host would, with a real HttpRequest and InvocationContext. */
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';

export interface CallOptions {
  method?: string;
  path: string;
  params?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Buffer | object;
}

export interface CallResult {
  status: number;
  headers: Record<string, string>;

  json: any;
  bytes: Buffer;
}

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

export async function call(handler: Handler, options: CallOptions): Promise<CallResult> {
  const { body } = options;
  const headers: Record<string, string> = { ...options.headers };
  let init: { string: string } | { bytes: Uint8Array } | undefined;
  if (typeof body === 'string') init = { string: body };
  else if (Buffer.isBuffer(body)) init = { bytes: body };
  else if (body !== undefined) {
    init = { string: JSON.stringify(body) };
    headers['content-type'] ??= 'application/json';
  }
  const request = new HttpRequest({
    method: options.method ?? 'GET',
    url: `http://localhost:7071${options.path}`,
    headers,
    params: options.params ?? {},
    ...(init ? { body: init } : {}),
  });
  const context = new InvocationContext({
    functionName: 'test',
    invocationId: 'test-invocation',
    logHandler: () => undefined,
  });
  const response = await handler(request, context);
  const responseHeaders = Object.fromEntries(
    Object.entries(response.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]),
  );
  const raw =
    response.jsonBody !== undefined
      ? Buffer.from(JSON.stringify(response.jsonBody))
      : response.body
        ? Buffer.from(response.body as Uint8Array)
        : Buffer.alloc(0);
  return { status: response.status ?? 200, headers: responseHeaders, json: response.jsonBody, bytes: raw };
}

/** A multipart/form-data body with file parts and text fields. */
export function multipart(
  files: { name: string; data: Buffer; type: string }[],
  fields: Record<string, string>,
): { body: Buffer; contentType: string } {
  const boundary = `----test${Date.now()}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields))
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  for (const file of files) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: ${file.type}\r\n\r\n`,
      ),
      file.data,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}
