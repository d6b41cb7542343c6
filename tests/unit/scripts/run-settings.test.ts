/** The settings of `npm start` and the local host: defaults, and every bad value named at once. */
import { ConfigError } from '../../../shared/errors';
import { loadRunSettings } from '../../../scripts/run-settings';

it('defaults to the ports Core Tools and Azurite use, a 25 s grace and the real listener 10-minute lease (QueueListener.cs in azure-sdk-for-net)', () => {
  expect(loadRunSettings({})).toEqual({
    port: 7071,
    azuriteBlobPort: 10000,
    azuriteQueuePort: 10001,
    azuriteTablePort: 10002,
    graceMs: 25000,
    queueLeaseSeconds: 600,
  });
  expect(loadRunSettings({ PORT: '8080', LOCAL_HOST_GRACE_MS: '0' })).toMatchObject({ port: 8080, graceMs: 0 });
});

it('refuses values that used to become NaN, naming each variable', () => {
  let error: unknown;
  try {
    loadRunSettings({ PORT: '70000', LOCAL_HOST_GRACE_MS: 'long', LOCAL_HOST_QUEUE_LEASE_SECONDS: '0' });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).errors.map((e) => e.message)).toEqual([
    "Expected an integer between 1 and 65535 for PORT but received '70000' of type string",
    "Expected an integer between 0 and 600000 for LOCAL_HOST_GRACE_MS but received 'long' of type string",
    "Expected an integer between 1 and 3600 for LOCAL_HOST_QUEUE_LEASE_SECONDS but received '0' of type string",
  ]);
});
