import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../../scripts/bench';
import { photo } from '../../helpers/images';
import { captureConsole } from '../../helpers/console';

/** Stands in for peer_filters.py: same CLI and JSON shape, fixed timings (10 ms per image). */
const FAKE_PEER = `
const args = process.argv.slice(2);
const filters = args[args.indexOf('--filters') + 1].split(',');
const out = { tool: 'fake peer', iterations: 1, filters: {} };
for (const f of filters) out.filters[f] = { params: {}, images: [{ image: 'a.jpg', width: 64, height: 48, median_ms: 10 }, { image: 'b.png', width: 64, height: 48, median_ms: 10 }], total_ms: 20 };
console.log(JSON.stringify(out));
`;

describe('npm run bench -- filters', () => {
  let dir: string;
  const { stdout, stderr } = captureConsole();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bench-'));
    await writeFile(path.join(dir, 'a.jpg'), await photo(64, 48, 'jpeg'));
    await writeFile(path.join(dir, 'b.png'), await photo(64, 48, 'png'));
    await writeFile(path.join(dir, 'notes.txt'), 'not an image');
    await writeFile(path.join(dir, 'peer.js'), FAKE_PEER);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('--json prints exactly one JSON object in the peer benchmark’s shape', async () => {
    expect(
      await main(['filters', '--images', dir, '--iterations', '1', '--filters', 'none,resize,blur', '--json']),
    ).toBe(0);
    expect(stdout).toHaveLength(1);
    const result = JSON.parse(stdout[0]);
    expect(Object.keys(result.filters)).toEqual(['none', 'resize', 'blur']);
    expect(result.filters.resize.params).toEqual({ width: 800, height: 600, fit: 'cover', background: '#000000' });
    expect(result.filters.blur.params).toEqual({ radius: 3 });
    expect(result.filters.blur.images.map((i: { image: string }) => i.image)).toEqual(['a.jpg', 'b.png']);
    const timings: { images: { median_ms: number; width: number }[]; total_ms: number }[] = Object.values(
      result.filters,
    );
    for (const timing of timings) {
      expect(timing.images.every((i) => i.median_ms > 0 && i.width === 64)).toBe(true);
      expect(timing.total_ms).toBeCloseTo(
        timing.images.reduce((s, i) => s + i.median_ms, 0),
        1,
      );
    }
  });

  it('prints a table with the cost relative to the decode + encode floor', async () => {
    expect(await main(['filters', '--images', dir, '--iterations', '1', '--filters', 'none,grayscale'])).toBe(0);
    const text = stdout.join('\n');
    expect(text).toContain('× floor');
    expect(text).toMatch(/grayscale/);
  });

  it('--compare-peer runs the peer per filter and reports speed-ups and their geometric mean', async () => {
    const args = [
      'filters',
      '--images',
      dir,
      '--iterations',
      '1',
      '--filters',
      'grayscale,brightness',
      '--compare-peer',
      '--json',
      '--python',
      process.execPath,
      '--peer-script',
      path.join(dir, 'peer.js'),
    ];
    expect(await main(args)).toBe(0);
    const result = JSON.parse(stdout[0]);
    expect(result.peer.tool).toBe('fake peer');
    expect(Object.keys(result.speedups)).toEqual(['grayscale', 'brightness']);
    const expected = 20 / result.sharp.filters.grayscale.total_ms;
    expect(result.speedups.grayscale).toBeCloseTo(expected, 1);
    expect(result.geomean_speedup).toBeCloseTo(Math.sqrt(result.speedups.grayscale * result.speedups.brightness), 1);
  });

  it('refuses bad arguments with the usage and exit code 2', async () => {
    expect(await main(['filters', '--iterations', '0'])).toBe(2);
    expect(stderr.join('\n')).toMatch(
      /expected --iterations to be an integer between 1 and 1000 but received '0'[\s\S]*usage:/,
    );
    expect(await main(['filters', '--filters', 'blurr'])).toBe(2);
    expect(await main(['speed'])).toBe(2);
    expect(await main(['filters', '--colour'])).toBe(2);
  });

  it('names the install command when the peer cannot run', async () => {
    await expect(
      main([
        'filters',
        '--images',
        dir,
        '--iterations',
        '1',
        '--filters',
        'blur',
        '--compare-peer',
        '--python',
        '/nonexistent/python3',
        '--peer-script',
        path.join(dir, 'peer.js'),
      ]),
    ).rejects.toThrow(/apt-get install -y python3-pil python3-opencv/);
  });
});
