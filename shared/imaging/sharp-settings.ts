/**
 * Process-wide sharp settings, applied once by configureSharp (each module that creates sharp
 * instances calls it when it loads), and the per-image input options.
 * Every worker process gets the same values, so behaviour does not depend on who ran a task.
 */
import sharp, { type SharpOptions } from 'sharp';
import { appSettings } from '../config';
import type { Limits } from './limits';

/** Input formats accepted; everything else (SVG, PDF, raw vips, …) is refused by magic bytes and blocked in libvips. */
export const ACCEPTED_LOADERS = [
  'VipsForeignLoadJpeg',
  'VipsForeignLoadPng',
  'VipsForeignLoadWebp',
  'VipsForeignLoadHeif',
  'VipsForeignLoadNsgif',
  'VipsForeignLoadTiff',
];

let configured = false;

export function configureSharp(concurrency = appSettings().sharpConcurrency): void {
  if (configured) return;
  configured = true;
  // libvips threads per image. sharp defaults to 1 on glibc without jemalloc (fragmentation);
  // one thread per core halves 4K latency for neighbourhood filters (measured), and tasks per
  // worker are bounded by the queue batch size, not by this.
  sharp.concurrency(concurrency);
  // Every task reads a different image: the operation cache would only hold memory.
  sharp.cache(false);
  // Defence in depth behind the magic-byte check: loaders that can reach files or the network
  // (SVG, PDF, matrix/CSV/vips files, ImageMagick) are blocked; only photo formats are unblocked.
  sharp.block({ operation: ['VipsForeignLoad'] });
  sharp.unblock({ operation: ACCEPTED_LOADERS });
}

/** Per-image options for the first sharp instance of a task. */
export function inputOptions(limits: Limits): SharpOptions {
  return {
    // Refuses decompression bombs from the header, before any pixel is allocated.
    limitInputPixels: limits.maxInputPixels,
    // sharp's strictest level, its default: libjpeg reports garbage in entropy-coded data only as a
    // warning, and a task must fail rather than deliver an image with damaged pixels.
    failOn: 'warning',
    // Users see photos the way their camera meant them.
    autoOrient: true,
  };
}
