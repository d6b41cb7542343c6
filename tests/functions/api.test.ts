/** Every route's success and error paths, through real HttpRequests against Azurite. */
import { TaskStore, type TaskRecord } from '../../shared/tasks/store';
import { isClaimRunning } from '../../shared/metrics/worker-stats';
import { loadSettings } from '../../shared/config';
import { resourceNames } from '../../shared/storage/names';
import sharp from 'sharp';
import { deadLetterRoutes } from '../../shared/http/dead-letters';
import { healthRoutes } from '../../shared/http/health';
import { imageRoutes } from '../../shared/http/images';
import { IMAGE_NAME, safeStem } from '../../shared/storage/images';
import { jobRoutes } from '../../shared/http/jobs';
import { taskRoutes } from '../../shared/http/tasks';
import { Storage } from '../../shared/storage/clients';
import { azuriteConnectionString } from '../../shared/storage/connection';
import { decodeMessageText } from '../../shared/storage/queue';
import { processTaskMessage } from '../../shared/tasks/worker';
import { FILTER_NAMES } from '../../shared/imaging/filters';
import { photo } from '../helpers/images';
import { SVG_EXTERNAL_HREF, pngClaiming, randomBytes } from '../helpers/hostile';
import { call, multipart, type CallResult } from '../helpers/http';
import { uniqueNamespace, useAzurite, withFailingUploads } from '../helpers/storage';
import { handlePoisonMessage } from '../../shared/tasks/poison';

const env = useAzurite();

async function api() {
  const storage = await env.storage();
  const get = () => storage;
  return {
    storage,
    ...healthRoutes(get),
    ...deadLetterRoutes(get),
    ...imageRoutes(get),
    ...jobRoutes(get),
    ...taskRoutes(get),
  };
}

function expectProblem(res: CallResult, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({
    type: `urn:image-pipeline:problem:${code}`,
    status,
    title: expect.any(String),
    detail: expect.any(String),
  });
}

async function receiveAll(storage: Storage, capability: 'light' | 'heavy') {
  const { receivedMessageItems } = await storage.queue(capability).receiveMessages({ numberOfMessages: 32 });
  return receivedMessageItems.map((m) => ({
    raw: m.messageText,
    body: JSON.parse(decodeMessageText(m.messageText)) as Record<string, unknown>,
  }));
}

describe('GET /api/health and /api/filters', () => {
  it('reports ok with a check per storage service', async () => {
    const a = await api();
    const res = await call(a.health, { path: '/api/health' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      status: 'ok',
      checks: { blob: 'ok', queue: 'ok', table: 'ok' },
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
  });

  it('answers 503 when storage is unreachable', async () => {
    const dead = new Storage(
      azuriteConnectionString({ blob: 1, queue: 1, table: 1 }),
      resourceNames(uniqueNamespace()),
    );
    const res = await call(healthRoutes(() => dead).health, { path: '/api/health' });
    expect(res.status).toBe(503);
    expect(res.json.status).toBe('unavailable');
    expect(res.json.checks.blob).toMatch(/^error: /);
  }, 20000);

  it('lists every filter with its parameters and the capability table with queue names', async () => {
    const res = await call((await api()).filters, { path: '/api/filters' });
    expect(res.json.filters.map((f: { name: string }) => f.name)).toEqual(FILTER_NAMES);
    expect(res.json.filters.find((f: { name: string }) => f.name === 'blur')).toMatchObject({
      capability: 'heavy',
      params: { radius: { type: 'number', min: 0.3, max: 100, default: 3 } },
    });
    expect(res.json.capabilities.map((c: { queue: string }) => c.queue)).toEqual(['tasks-light', 'tasks-heavy']);
  });
});

describe('POST /api/jobs → queue → worker → result', () => {
  it('JSON naming blobs: the exact base64 message on the right queue, processed, result bytes', async () => {
    const a = await api();
    await a.storage.images.getBlockBlobClient('cat.jpg').uploadData(await photo(320, 240, 'jpeg'));
    const res = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['cat.jpg'], filters: [{ name: 'resize', width: 100 }, 'sharpen'], output: { format: 'png' } },
    });
    expect(res.status).toBe(202);
    expect(res.headers.location).toBe(`http://localhost:7071/api/jobs/${res.json.job_id}`);
    const [task] = res.json.tasks;
    expect(task).toMatchObject({
      image: 'cat.jpg',
      capability: 'heavy',
      status: 'queued',
      status_url: `http://localhost:7071/api/tasks/${task.task_id}`,
    });

    const [message] = await receiveAll(a.storage, 'heavy');
    expect(Buffer.from(message.raw, 'base64').toString('base64')).toBe(message.raw);
    expect(message.body).toEqual({
      v: 1,
      task_id: task.task_id,
      job_id: res.json.job_id,
      image: 'cat.jpg',
      filters: [
        { name: 'resize', width: 100, height: null, fit: 'cover', background: '#000000' },
        { name: 'sharpen', amount: 1 },
      ],
      output: { format: 'png', quality: 80 },
      submitted_at: expect.any(String),
      etag: expect.stringMatching(/^W\/"/), // the record's as created: the worker claims it without a read
    });
    expect(await receiveAll(a.storage, 'light')).toEqual([]);

    const queued = await call(a.getTask, { path: '', params: { task_id: task.task_id } });
    expect(queued.json).toMatchObject({
      status: 'queued',
      queue_position: { queue: a.storage.names.queueOf('heavy'), approximate: true },
    });
    expectProblem(await call(a.getTaskResult, { path: '/r', params: { task_id: task.task_id } }), 409, 'not_ready');

    // a worker that claimed the task and died (it never registered, and its claim is older than a dead
    // worker's silence): the task says its claim is not live and when it will run again
    const tasks = new TaskStore(a.storage.tasks);
    await tasks.start(task.task_id, 'gone-worker-1', undefined, new Date(Date.now() - 60_000));
    const orphaned = await call(a.getTask, { path: '', params: { task_id: task.task_id } });
    expect(orphaned.json).toMatchObject({
      status: 'processing',
      claim: { worker_id: 'gone-worker-1', live: false, next: expect.stringMatching(/lease ends/) },
    });

    // the next delivery, wired to the registry as functions/workers.ts does, takes the dead claim over
    const isClaimLive = (claim: TaskRecord) => isClaimRunning(a.storage, claim);
    const takeOver = { storage: a.storage, capability: 'heavy' as const, isClaimRunning: isClaimLive };
    expect(await processTaskMessage(message.body, takeOver)).toBe('succeeded');
    const done = await call(a.getTask, { path: '', params: { task_id: task.task_id } });
    expect(done.json).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      output: { width: 100, height: 75, content_type: 'image/png' },
    });
    const result = await call(a.getTaskResult, { path: '/r?download=stream', params: { task_id: task.task_id } });
    expect(result.headers['content-type']).toBe('image/png');
    expect(await sharp(result.bytes).metadata()).toMatchObject({ format: 'png', width: 100, height: 75 });
    const job = await call(a.getJob, { path: '', params: { job_id: res.json.job_id } });
    expect(job.json).toMatchObject({ status: 'succeeded', total: 1, counts: { succeeded: 1, queued: 0 } });
  });

  it('JSON without images takes every image in the container', async () => {
    const a = await api();
    for (const name of ['a.jpg', 'b.png'])
      await a.storage.images
        .getBlockBlobClient(name)
        .uploadData(await photo(64, 48, name.endsWith('png') ? 'png' : 'jpeg'));
    const res = await call(a.submitJob, { method: 'POST', path: '/api/jobs', body: { filters: ['grayscale'] } });
    expect(res.json.tasks.map((t: { image: string; capability: string }) => [t.image, t.capability])).toEqual([
      ['a.jpg', 'light'],
      ['b.png', 'light'],
    ]);
  });

  it('raw image body with the pipeline in the query string', async () => {
    const a = await api();
    const res = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs?filters=resize,blur&filter_params=%7B%22resize%22%3A%7B%22width%22%3A50%7D%7D&format=webp&quality=70',
      headers: { 'content-type': 'image/jpeg' },
      body: await photo(200, 100, 'jpeg'),
    });
    expect(res.status).toBe(202);
    const [message] = await receiveAll(a.storage, 'heavy');
    expect(message.body).toMatchObject({
      image: expect.stringMatching(/^upload-.*\.jpg$/),
      output: { format: 'webp', quality: 70 },
      filters: [
        { name: 'resize', width: 50 },
        { name: 'blur', radius: 3 },
      ],
    });
    expect(await a.storage.images.getBlockBlobClient(message.body.image as string).exists()).toBe(true);
  });

  it('multipart with several files and the pipeline as fields', async () => {
    const a = await api();
    const form = multipart(
      [
        { name: 'one.jpg', data: await photo(64, 48, 'jpeg'), type: 'image/jpeg' },
        { name: 'two.png', data: await photo(64, 48, 'png'), type: 'image/png' },
      ],
      { filters: '["flip", {"name": "brightness", "factor": 1.2}]', output: '{"format": "avif"}' },
    );
    const res = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      headers: { 'content-type': form.contentType },
      body: form.body,
    });
    expect(res.status).toBe(202);
    expect(res.json.tasks).toHaveLength(2);
    const messages = await receiveAll(a.storage, 'light');
    expect(messages.map((m) => m.body.output)).toEqual([
      { format: 'avif', quality: 80 },
      { format: 'avif', quality: 80 },
    ]);
  });
});

describe('POST /api/jobs refuses bad input with problem+json', () => {
  let a: Awaited<ReturnType<typeof api>>;
  beforeAll(async () => {
    a = await api();
    await a.storage.images.getBlockBlobClient('ok.jpg').uploadData(await photo(64, 48, 'jpeg'));
  });
  const submit = (body: unknown, headers?: Record<string, string>) =>
    call(a.submitJob, { method: 'POST', path: '/api/jobs', body: body as object, headers });

  it('unknown filter and out-of-range parameter, with field errors', async () => {
    const res = await submit({ images: ['ok.jpg'], filters: ['blurr', { name: 'blur', radius: 500 }] });
    expectProblem(res, 400, 'validation_failed');
    expect(res.json.errors).toEqual([
      expect.objectContaining({ field: 'filters[0]', received: "'blurr' of type string" }),
      expect.objectContaining({
        field: 'filters[1].radius',
        expected: 'number between 0.3 and 100',
        received: '500 of type number',
      }),
    ]);
  });

  it('malformed JSON, empty body, non-object JSON', async () => {
    expect((await submit('{"filters": [', { 'content-type': 'application/json' })).json.errors[0]).toMatchObject({
      field: 'body',
      expected: 'valid JSON',
    });
    expectProblem(await submit('', { 'content-type': 'application/json' }), 400, 'validation_failed');
    expectProblem(await submit('[1,2]', { 'content-type': 'application/json' }), 400, 'validation_failed');
  });

  it('unknown images and unsafe names', async () => {
    const missing = await submit({ images: ['ok.jpg', 'nope.jpg'], filters: [] });
    expectProblem(missing, 404, 'image_not_found');
    expect(missing.json.errors).toEqual([
      expect.objectContaining({ field: 'images[1]', received: "'nope.jpg' of type string" }),
    ]);
    expect((await submit({ images: ['../etc/passwd'], filters: [] })).json.errors[0].field).toBe('images[0]');
  });

  it('too many images and oversized bodies', async () => {
    const tight = jobRoutes(() => a.storage, loadSettings({ MAX_IMAGES_PER_JOB: '1', MAX_BODY_BYTES: '1000' }));
    expectProblem(
      await call(tight.submitJob, {
        method: 'POST',
        path: '/api/jobs',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ images: ['ok.jpg', 'ok.jpg'], filters: [] }),
      }),
      400,
      'validation_failed',
    );
    expectProblem(
      await call(tight.submitJob, {
        method: 'POST',
        path: '/api/jobs',
        headers: { 'content-type': 'image/jpeg' },
        body: await photo(64, 48, 'jpeg'),
      }),
      413,
      'body_too_large',
    );
  });

  it('wrong content type, and raw bodies that are not whole images', async () => {
    const wrong = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    expectProblem(wrong, 415, 'unsupported_media_type');
    expect(wrong.json.detail).toBe(
      'Expected Content-Type application/json, image/* or multipart/form-data but received text/plain',
    );
    const raw = (body: Buffer) =>
      call(a.submitJob, {
        method: 'POST',
        path: '/api/jobs?filters=blur',
        headers: { 'content-type': 'image/jpeg' },
        body,
      });
    expectProblem(await raw(SVG_EXTERNAL_HREF), 415, 'refused_format');
    expectProblem(await raw(randomBytes(500)), 415, 'not_an_image');
    const jpeg = await photo(64, 48, 'jpeg');
    expectProblem(await raw(jpeg.subarray(0, jpeg.length - 600)), 422, 'corrupt_image');
    expectProblem(await raw(Buffer.alloc(0)), 400, 'validation_failed');
  });

  it('refuses a bad pipeline before storing anything', async () => {
    const before = [];
    for await (const blob of a.storage.images.listBlobsFlat()) before.push(blob.name);
    expectProblem(
      await call(a.submitJob, {
        method: 'POST',
        path: '/api/jobs?filters=nope',
        headers: { 'content-type': 'image/png' },
        body: await photo(8, 8),
      }),
      400,
      'validation_failed',
    );
    const after = [];
    for await (const blob of a.storage.images.listBlobsFlat()) after.push(blob.name);
    expect(after).toEqual(before);
  });
});

describe('GET /api/jobs/{job_id} and /api/tasks/{task_id}', () => {
  it('404 for unknown ids and 400 for malformed ones', async () => {
    const a = await api();
    expectProblem(
      await call(a.getJob, { path: '', params: { job_id: '00000000-0000-0000-0000-000000000000' } }),
      404,
      'not_found',
    );
    expectProblem(await call(a.getJob, { path: '', params: { job_id: 'x' } }), 400, 'validation_failed');
    expectProblem(
      await call(a.getTask, { path: '', params: { task_id: '00000000-0000-0000-0000-000000000000_0000' } }),
      404,
      'not_found',
    );
    expectProblem(await call(a.getTaskResult, { path: '', params: { task_id: 'garbage' } }), 400, 'validation_failed');
  });
});

describe('images', () => {
  it('upload, list, download and describe', async () => {
    const a = await api();
    const png = await sharp(await photo(40, 20))
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    const put = await call(a.putImage, {
      method: 'PUT',
      path: '/api/images/side.jpg',
      params: { name: 'side.jpg' },
      headers: { 'content-type': 'image/jpeg' },
      body: png,
    });
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ name: 'side.jpg', content_type: 'image/jpeg', bytes: png.length });
    expect(
      (await call(a.listImages, { path: '/api/images' })).json.images.map((i: { name: string }) => i.name),
    ).toEqual(['side.jpg']);
    const got = await call(a.getImage, { path: '', params: { name: 'side.jpg' } });
    expect(got.bytes.equals(png)).toBe(true);
    expect(got.headers['content-type']).toBe('image/jpeg');
    const info = await call(a.getImageInfo, { path: '', params: { name: 'side.jpg' } });
    expect(info.json).toEqual({
      name: 'side.jpg',
      format: 'jpeg',
      width: 20,
      height: 40,
      bytes: png.length,
      channels: 3,
      space: 'srgb',
      has_alpha: false,
      orientation: 6,
    });
  });

  it('refuses path tricks, non-images, SVG and unknown names', async () => {
    const a = await api();
    const put = (name: string, body: Buffer, type = 'image/png') =>
      call(a.putImage, { method: 'PUT', path: '', params: { name }, headers: { 'content-type': type }, body });
    expectProblem(await put('../x.png', await photo(8, 8)), 400, 'validation_failed');
    expectProblem(await put('.hidden', await photo(8, 8)), 400, 'validation_failed');
    expectProblem(await put('a.svg', SVG_EXTERNAL_HREF, 'image/svg+xml'), 415, 'refused_format');
    const bomb = await put('bomb.png', pngClaiming(100000, 100000));
    expectProblem(bomb, 413, 'input_too_large');
    expect(bomb.json.detail).toContain('100000×100000');
    expectProblem(await put('a.png', Buffer.from('hello'), 'text/plain'), 415, 'unsupported_media_type');
    expectProblem(await call(a.getImage, { path: '', params: { name: 'nope.png' } }), 404, 'image_not_found');
    expectProblem(await call(a.getImageInfo, { path: '', params: { name: 'nope.png' } }), 404, 'image_not_found');
  });
});

describe('PUT /api/images/{name} never replaces unless asked; DELETE removes', () => {
  const put = (a: Awaited<ReturnType<typeof api>>, name: string, body: Buffer, query = '', headers = {}) =>
    call(a.putImage, {
      method: 'PUT',
      path: `/api/images/${name}${query}`,
      params: { name },
      headers: { 'content-type': 'image/png', ...headers },
      body,
    });
  const widthOf = async (a: Awaited<ReturnType<typeof api>>, name: string) =>
    (await sharp(await a.storage.images.getBlockBlobClient(name).downloadToBuffer()).metadata()).width;

  it('a second PUT of a name answers 409 and keeps the first image; ?overwrite=true replaces it', async () => {
    const a = await api();
    const first = await put(a, 'p.png', await photo(10, 10, 'png'));
    expect(first.status).toBe(201);
    expect(first.headers.etag).toEqual(expect.any(String));
    const again = await put(a, 'p.png', await photo(20, 10, 'png'));
    expectProblem(again, 409, 'image_exists');
    expect(again.json.detail).toMatch(/'p\.png' already exists.*\?overwrite=true/);
    expect(await widthOf(a, 'p.png')).toBe(10);
    const replaced = await put(a, 'p.png', await photo(30, 10, 'png'), '?overwrite=true');
    expect(replaced.status).toBe(200);
    expect(await widthOf(a, 'p.png')).toBe(30);
    expect((await put(a, 'new.png', await photo(8, 8, 'png'), '?overwrite=true')).status).toBe(201);
    expect((await put(a, 'p.png', await photo(8, 8, 'png'), '?overwrite=false')).status).toBe(409);
    expectProblem(await put(a, 'p.png', await photo(8, 8, 'png'), '?overwrite=yes'), 400, 'validation_failed');
    const typo = await put(a, 'p.png', await photo(8, 8, 'png'), '?overwrit=true');
    expectProblem(typo, 400, 'validation_failed');
    expect(typo.json.errors[0].field).toBe('query.overwrit');
    expect(typo.json.detail).toContain("'overwrite'");
  });

  it('If-None-Match: * never replaces (even with ?overwrite=true); If-Match replaces only that version', async () => {
    const a = await api();
    const first = await put(a, 'q.png', await photo(10, 10, 'png'), '', { 'if-none-match': '*' });
    expect(first.status).toBe(201);
    const star = await put(a, 'q.png', await photo(20, 10, 'png'), '?overwrite=true', { 'if-none-match': '*' });
    expectProblem(star, 409, 'image_exists');
    const matched = await put(a, 'q.png', await photo(40, 10, 'png'), '', { 'if-match': first.headers.etag });
    expect(matched.status).toBe(200);
    expect(await widthOf(a, 'q.png')).toBe(40);
    const stale = await put(a, 'q.png', await photo(50, 10, 'png'), '', { 'if-match': first.headers.etag });
    expectProblem(stale, 412, 'precondition_failed');
    expect(await widthOf(a, 'q.png')).toBe(40);
    expectProblem(
      await put(a, 'none.png', await photo(8, 8, 'png'), '', { 'if-match': '"x"' }),
      412,
      'precondition_failed',
    );
    expectProblem(
      await put(a, 'q.png', await photo(8, 8, 'png'), '', { 'if-none-match': '"abc"' }),
      400,
      'validation_failed',
    );
  });

  it('of concurrent PUTs of one name exactly one creates it; the others get 409', async () => {
    const a = await api();
    const answers = await Promise.all(
      [11, 12, 13, 14, 15, 16].map(async (w) => put(a, 'race.png', await photo(w, 10, 'png'))),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
    const winner = answers.findIndex((r) => r.status === 201);
    expect(await widthOf(a, 'race.png')).toBe(11 + winner);
  });

  it('DELETE: 204, then 404; results stay; a task that reads the deleted image fails as image_not_found', async () => {
    const a = await api();
    await put(a, 'gone.png', await photo(16, 16, 'png'));
    const job = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['gone.png'], filters: ['grayscale'] },
    });
    expect(job.status).toBe(202);
    const [message] = await receiveAll(a.storage, 'light');
    await a.storage.processed.getBlockBlobClient('other-result.png').uploadData(await photo(8, 8, 'png'));
    const del = () =>
      call(a.deleteImage, { method: 'DELETE', path: '/api/images/gone.png', params: { name: 'gone.png' } });
    const deleted = await del();
    expect(deleted.status).toBe(204);
    expect(deleted.bytes.length).toBe(0);
    expectProblem(await del(), 404, 'image_not_found');
    expectProblem(
      await call(a.deleteImage, { method: 'DELETE', path: '', params: { name: '../x.png' } }),
      400,
      'validation_failed',
    );
    expect(await a.storage.images.getBlockBlobClient('gone.png').exists()).toBe(false);
    expect(await a.storage.processed.getBlockBlobClient('other-result.png').exists()).toBe(true);
    expect(await processTaskMessage(message.body, { storage: a.storage, capability: 'light' })).toBe('failed');
    const task = await call(a.getTask, { path: '', params: { task_id: job.json.tasks[0].task_id } });
    expect(task.json).toMatchObject({
      status: 'failed',
      failure_type: 'job_failure',
      failure_reason: 'image_not_found',
      error: expect.stringContaining("No image named 'gone.png'"),
    });
    // the name is free again
    expect((await put(a, 'gone.png', await photo(8, 8, 'png'))).status).toBe(201);
  });
});

describe('dead letters', () => {
  it('poison → listed; requeue → processed; nothing to requeue → 404; unknown capability → 400', async () => {
    const a = await api();
    await a.storage.images.getBlockBlobClient('p.jpg').uploadData(await photo(64, 48, 'jpeg'));
    const submitted = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['p.jpg'], filters: ['flip'] },
    });
    const [message] = await receiveAll(a.storage, 'light');
    await handlePoisonMessage(message.body, { storage: a.storage, capability: 'light' }, { id: 'm1', dequeueCount: 5 });
    const listed = await call(a.deadLetters, { path: '/api/dead-letters' });
    expect(listed.json.capabilities.find((c: { capability: string }) => c.capability === 'light')).toMatchObject({
      count: 1,
      dead_letters: [{ task_id: submitted.json.tasks[0].task_id, reason: 'exhausted_retries' }],
    });
    const requeued = await call(a.requeue, { method: 'POST', path: '', params: { capability: 'light' } });
    expect(requeued.json).toMatchObject({ capability: 'light', requeued: 1, skipped: [] });
    const [again] = await receiveAll(a.storage, 'light');
    expect(await processTaskMessage(again.body, { storage: a.storage, capability: 'light' })).toBe('succeeded');
    expect(
      (await call(a.getTask, { path: '', params: { task_id: submitted.json.tasks[0].task_id } })).json,
    ).toMatchObject({ status: 'succeeded', failure_type: null });
    expectProblem(
      await call(a.requeue, { method: 'POST', path: '', params: { capability: 'light' } }),
      404,
      'not_found',
    );
    expectProblem(
      await call(a.requeue, { method: 'POST', path: '', params: { capability: 'medium' } }),
      400,
      'validation_failed',
    );
  });
});

describe('no task is ever lost', () => {
  it('a mixed batch (good, corrupt, poison-bound, garbled) ends with every task in a final state', async () => {
    const a = await api();
    const good = await photo(64, 48, 'jpeg');
    await a.storage.images.getBlockBlobClient('good.jpg').uploadData(good);
    await a.storage.images.getBlockBlobClient('corrupt.jpg').uploadData(good.subarray(0, good.length / 2));
    await a.storage.images.getBlockBlobClient('stuck.jpg').uploadData(good);
    await a.storage.images.getBlockBlobClient('garbled.jpg').uploadData(good);
    const res = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['good.jpg', 'corrupt.jpg', 'stuck.jpg', 'garbled.jpg'], filters: ['negate'] },
    });
    const broken = withFailingUploads(a.storage);
    for (const { body } of await receiveAll(a.storage, 'light')) {
      if (body.image === 'stuck.jpg') {
        // the host's retries: every delivery fails transiently, then the message goes to poison
        for (let delivery = 1; delivery <= 5; delivery++)
          await expect(processTaskMessage(body, { storage: broken, capability: 'light' })).rejects.toThrow();
        await handlePoisonMessage(body, { storage: a.storage, capability: 'light' }, { id: 'stuck', dequeueCount: 5 });
      } else if (body.image === 'garbled.jpg') {
        await processTaskMessage({ ...body, output: { format: 'bmp' } }, { storage: a.storage, capability: 'light' });
      } else {
        await processTaskMessage(body, { storage: a.storage, capability: 'light' });
      }
    }
    const job = await call(a.getJob, { path: '', params: { job_id: res.json.job_id } });
    expect(job.json.status).toBe('partially_failed');
    expect(
      job.json.tasks.map(
        (t: { image: string; status: string; failure_type: string | null; failure_reason: string | null }) => [
          t.image,
          t.status,
          t.failure_type,
          t.failure_reason,
        ],
      ),
    ).toEqual([
      ['good.jpg', 'succeeded', null, null],
      ['corrupt.jpg', 'failed', 'job_failure', 'corrupt_image'],
      ['stuck.jpg', 'failed', 'worker_failure', 'exhausted_retries'],
      ['garbled.jpg', 'failed', 'job_failure', 'invalid_message'],
    ]);
  });
});

describe('POST /api/jobs: bounded work, named mistakes, nothing half-stored', () => {
  let a: Awaited<ReturnType<typeof api>>;
  beforeAll(async () => {
    a = await api();
    await a.storage.images.getBlockBlobClient('ok.jpg').uploadData(await photo(64, 48, 'jpeg'));
  });
  const submit = (body: unknown, headers?: Record<string, string>, path = '/api/jobs') =>
    call(a.submitJob, { method: 'POST', path, body: body as object, headers });
  const blobNames = async () => {
    const names: string[] = [];
    for await (const blob of a.storage.images.listBlobsFlat()) names.push(blob.name);
    return names.sort();
  };

  it('a 4 MB body of a million unknown filter names: one problem, a small answer', async () => {
    const body = `{"images":["ok.jpg"],"filters":[${Array.from({ length: 1_000_000 }, () => '"x"').join(',')}]}`;
    expect(body.length).toBeGreaterThan(3_900_000);
    const res = await submit(body, { 'content-type': 'application/json' });
    expectProblem(res, 400, 'validation_failed');
    expect(res.json.errors).toEqual([expect.objectContaining({ field: 'filters' })]);
    expect(res.bytes.length).toBeLessThan(20_000);
  });

  it('refuses an over-long images list before looking at its names', async () => {
    const res = await submit({ images: Array.from({ length: 100_000 }, () => '../bad'), filters: [] });
    expectProblem(res, 400, 'validation_failed');
    expect(res.json.errors).toEqual([expect.objectContaining({ field: 'images', received: '100000 images' })]);
  });

  it('an unknown top-level field is named, with the closest known one; __proto__ too', async () => {
    const res = await submit({ images: ['ok.jpg'], fitlers: ['blur'] });
    expectProblem(res, 400, 'validation_failed');
    expect(res.json.errors).toEqual([
      expect.objectContaining({
        field: 'fitlers',
        message:
          "Unknown field fitlers: expected one of images, filters, filter_params, output, callback_url (did you mean 'filters'?)",
      }),
    ]);
    const proto = await submit('{"images": ["ok.jpg"], "filters": [], "__proto__": {"x": 1}}', {
      'content-type': 'application/json',
    });
    expect(proto.json.errors).toEqual([expect.objectContaining({ field: '__proto__' })]);
  });

  it('an unknown raw-upload query parameter is named; the function key (code) is accepted', async () => {
    const jpeg = await photo(32, 24, 'jpeg');
    const headers = { 'content-type': 'image/jpeg' };
    const before = await blobNames();
    const typo = await submit(jpeg, headers, '/api/jobs?filter=blur');
    expectProblem(typo, 400, 'validation_failed');
    expect(typo.json.errors[0]).toMatchObject({ field: 'query.filter' });
    expect(typo.json.errors[0].message).toContain("did you mean 'filters'?");
    expect(await blobNames()).toEqual(before);
    expect((await submit(jpeg, headers, '/api/jobs?filters=blur&code=secret-function-key')).status).toBe(202);
  });

  it('refuses over-long query fields before parsing them', async () => {
    const res = await submit(
      await photo(8, 8, 'jpeg'),
      { 'content-type': 'image/jpeg' },
      `/api/jobs?filters=${'x,'.repeat(20000)}`,
    );
    expectProblem(res, 400, 'validation_failed');
    expect(res.json.errors[0]).toMatchObject({ field: 'filters', received: '40000 characters' });
  });

  it('an unknown multipart text field is named', async () => {
    const form = multipart([{ name: 'a.jpg', data: await photo(16, 16, 'jpeg'), type: 'image/jpeg' }], {
      filters: 'blur',
      outptu: '{"format": "png"}',
    });
    const res = await submit(form.body, { 'content-type': form.contentType });
    expectProblem(res, 400, 'validation_failed');
    expect(res.json.errors[0]).toMatchObject({ field: 'form.outptu' });
    expect(res.json.errors[0].message).toContain("did you mean 'output'?");
  });

  it('a multipart body without Content-Length is stopped at MAX_BODY_BYTES', async () => {
    const tight = jobRoutes(() => a.storage, loadSettings({ MAX_BODY_BYTES: '5000' }));
    const form = multipart([{ name: 'big.png', data: randomBytes(50_000), type: 'image/png' }], { filters: 'blur' });
    const before = await blobNames();
    const res = await call(tight.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      headers: { 'content-type': form.contentType },
      body: form.body,
    });
    expectProblem(res, 413, 'body_too_large');
    expect(res.json.detail).toBe('The body is more than 5000 bytes: expected at most 5000 (MAX_BODY_BYTES)');
    expect(await blobNames()).toEqual(before);
  });

  it('a multipart job with a refused part stores none of its parts', async () => {
    const before = await blobNames();
    for (const [bad, type] of [
      [SVG_EXTERNAL_HREF, 'image/svg+xml'],
      [Buffer.from('%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n'), 'application/pdf'],
    ] as const) {
      const form = multipart(
        [
          { name: 'good.jpg', data: await photo(32, 24, 'jpeg'), type: 'image/jpeg' },
          { name: 'bad.file', data: bad, type },
        ],
        { filters: 'blur' },
      );
      const res = await submit(form.body, { 'content-type': form.contentType });
      expect(res.status).toBe(415);
      expect(res.json.detail).toMatch(/^File part 2 of 2 \('bad.file'\): .*; nothing was stored$/);
      expect(await blobNames()).toEqual(before);
    }
  });

  it('stores uploads under a safe form of their file name, never replacing another', async () => {
    const form = multipart(
      [
        { name: 'My Holiday (1).JPG', data: await photo(32, 24, 'jpeg'), type: 'image/jpeg' },
        { name: '../../etc/passwd', data: await photo(32, 24, 'png'), type: 'image/png' },
        { name: '..', data: await photo(32, 24, 'png'), type: 'image/png' },
        { name: 'My Holiday (1).JPG', data: await photo(32, 24, 'jpeg'), type: 'image/jpeg' },
      ],
      { filters: 'blur' },
    );
    const res = await submit(form.body, { 'content-type': form.contentType });
    expect(res.status).toBe(202);
    const names = res.json.tasks.map((t: { image: string }) => t.image);
    expect(names).toEqual([
      expect.stringMatching(/^My-Holiday-1-[0-9a-f]{12}\.jpg$/),
      expect.stringMatching(/^passwd-[0-9a-f]{12}\.png$/),
      expect.stringMatching(/^upload-[0-9a-f]{12}\.png$/),
      expect.stringMatching(/^My-Holiday-1-[0-9a-f]{12}\.jpg$/),
    ]);
    expect(new Set(names).size).toBe(4);
    const raw = await submit(await photo(16, 16, 'png'), { 'content-type': 'image/png' }, '/api/jobs?name=cat.jpg');
    expect(raw.json.tasks[0].image).toMatch(/^cat-[0-9a-f]{12}\.png$/);
    const disposed = await submit(await photo(16, 16, 'png'), {
      'content-type': 'image/png',
      'content-disposition': 'attachment; filename="dog photo.png"',
    });
    expect(disposed.json.tasks[0].image).toMatch(/^dog-photo-[0-9a-f]{12}\.png$/);
    const extended = await submit(await photo(16, 16, 'png'), {
      'content-type': 'image/png',
      'content-disposition': `attachment; filename="fallback.png"; filename*=UTF-8''Caf%C3%A9%20cr%C3%A8me.jpg`,
    });
    expect(extended.json.tasks[0].image).toMatch(/^Cafe-creme-[0-9a-f]{12}\.png$/);
    const nameless = await submit(await photo(16, 16, 'png'), { 'content-type': 'image/png' });
    expect(nameless.json.tasks[0].image).toMatch(/^upload-[0-9a-f]{12}\.png$/);
  });

  it('the safe stem: normalized, accents dropped, path parts and extension stripped, capped, never empty', () => {
    const composed = 'Cr\u00e8me br\u00fbl\u00e9e.jpg';
    expect(safeStem(composed)).toBe('Creme-brulee');
    expect(safeStem(composed.normalize('NFD'))).toBe('Creme-brulee');
    expect(safeStem('C:\\Users\\me\\Desktop\\IMG_0001.HEIC')).toBe('IMG_0001');
    expect(safeStem('/etc/../.ssh/.id_rsa.png')).toBe('id_rsa');
    expect(safeStem('...')).toBe('upload');
    expect(safeStem('\u5199\u771f.jpg')).toBe('upload');
    expect(safeStem(undefined)).toBe('upload');
    expect(safeStem('a..b...c.png')).toBe('a.b.c');
    expect(safeStem('-rf .png')).toBe('rf');
    expect(safeStem(`${'x'.repeat(59)}.......y.png`)).toBe('x'.repeat(59));
    expect(safeStem(`${'long '.repeat(100)}.jpg`)).toHaveLength(59);
    for (const name of ['a', 'é', '../..', 'x'.repeat(500), '\u0000\u202e.png', 'con.jpg'])
      expect(`${safeStem(name)}-0123456789ab.png`).toMatch(IMAGE_NAME);
  });
});
