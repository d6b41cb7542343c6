/**
 * The job index counts retries: two retries of one job at once (each read the row before the other wrote it)
 * both count, and a retry never brings back a status cached before it. On Azurite.
 */
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import { JobIndex } from '../../../shared/tasks/job-index';
import { createJob } from '../../../shared/tasks/jobs';
import { useAzurite } from '../../helpers/storage';

const env = useAzurite();
const CREATED = '2026-05-01T10:00:00.000Z';

/** A job of one task created at CREATED, and the index it is in. */
async function newJob(): Promise<{ jobId: string; index: JobIndex }> {
  const storage = await env.storage();
  const { job_id } = await createJob(storage, ['a.png'], normalizeTaskSpec({ filters: ['flip'] }), new Date(CREATED));
  return { jobId: job_id, index: new JobIndex(storage.jobs) };
}

it('two retries that read the row at the same time both count', async () => {
  const { jobId, index } = await newJob();
  const [first, second] = [await index.get(jobId, CREATED), await index.get(jobId, CREATED)];
  await index.reopen(first!);
  await index.reopen(second!); // read before the first retry wrote
  expect((await index.get(jobId, CREATED))?.entry.retries).toBe(2);
});

it('a retry that read the row before a status was cached still clears it', async () => {
  const { jobId, index } = await newJob();
  const stale = (await index.get(jobId, CREATED))!;
  await index.cacheFinal((await index.get(jobId, CREATED))!, 'succeeded', {
    queued: 0,
    processing: 0,
    succeeded: 1,
    failed: 0,
  });
  expect((await index.get(jobId, CREATED))?.entry.final).toBeDefined();
  await index.reopen(stale);
  const after = (await index.get(jobId, CREATED))!;
  expect([after.entry.final, after.entry.retries]).toEqual([undefined, 1]);
});

it('a retry of a job whose row was deleted meanwhile changes nothing', async () => {
  const { jobId, index } = await newJob();
  const row = (await index.get(jobId, CREATED))!;
  await index.remove(row);
  await index.reopen(row);
  expect(await index.get(jobId, CREATED)).toBeUndefined();
});
