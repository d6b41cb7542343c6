/**
 * applyRetention (timer, RETENTION_SCHEDULE, default daily at 03:30 UTC; one host runs it, like every timer):
 * deletes what is older than the RETENTION_*_DAYS settings: task records of ended jobs with their results
 * (found through the job index; every RETENTION_TASKS_SCAN_DAYS-th day by a scan of the task records),
 * results and uploads (unless RETENTION_BLOBS=lifecycle leaves them to the storage account's rules), dead
 * letters and metrics rows. At most RETENTION_MAX_DELETES per run; the next run continues. A failed run
 * deletes nothing twice and loses nothing: the next one starts over from what is still there.
 */
import { app } from '@azure/functions';
import { appSettings } from '../shared/config';
import { appStorage } from '../shared/storage/clients';
import { applyRetention, retentionSummary } from '../shared/tasks/retention';

app.timer('applyRetention', {
  schedule: appSettings().retentionSchedule,
  handler: async (_timer, context) => {
    context.log(retentionSummary(await applyRetention(appStorage(), appSettings())));
  },
});
