/**
 * What a command prints, per test: console.log lines in `stdout`, console.error lines in `stderr` (jest spies,
 * emptied before and restored after each test of the describe block that calls it).
 */
export function captureConsole(): { readonly stdout: string[]; readonly stderr: string[] } {
  const captured = { stdout: [] as string[], stderr: [] as string[] };
  beforeEach(() => {
    captured.stdout.length = 0;
    captured.stderr.length = 0;
    jest.spyOn(console, 'log').mockImplementation((line: string) => void captured.stdout.push(line));
    jest.spyOn(console, 'error').mockImplementation((line: string) => void captured.stderr.push(line));
  });
  afterEach(() => jest.restoreAllMocks());
  return captured;
}
