/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  // Type checking runs once in `npm test` (tsc --noEmit); jest only transpiles.
  transform: { '^.+\\.ts$': 'ts-jest' },
  testTimeout: 30000,
  // Jest's default on 2 cores is one worker; many e2e suites mostly wait on child processes (hosts, Azurite,
  // timers), so a second worker overlaps them with CPU-bound suites.
  maxWorkers: 2,
};
