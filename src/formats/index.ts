/** Format registry: opens an image for reading by looking at what it is (a directory, or a file's content). */
import fs from 'node:fs';
import { SourceReadError, UnsupportedInputError } from '../errors.js';
import { openDirectory } from './directory.js';
import { openTar, createTarWriter, tarCompressionForName } from './tar.js';
import { createDirectoryWriter } from './directory.js';
import { diskFormatForName } from './disk-writer.js';
import type { ImageReader, ImageWriter } from './types.js';

export type { ImageReader, ImageWriter, ImageEntry, FileContent, DataPiece, Xattr, EntryType, SourceDescription, WriterWarning } from './types.js';

/** Opens `source` as a directory or a (compressed) tar; the tar reader checks content, not the name. */
export function openImage(source: string, options: { exclude?: string[] } = {}): ImageReader {
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch (e) {
    throw new SourceReadError(source, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message);
  }
  if (st.isDirectory()) return openDirectory(source, { exclude: options.exclude });
  if (st.isFile() || st.isBlockDevice()) return openTar(source);
  throw new UnsupportedInputError(source, 'not a directory, tar archive or image file');
}

export type OutputFormat = 'dir' | 'tar' | 'raw' | 'qcow2';

/**
 * The output format a checkout destination implies: tar names (.tar, .tar.gz, .tar.zst, .tar.xz) → tar, .qcow2 →
 * qcow2, .raw and .img → raw, else dir.
 */
export function outputFormatForName(dest: string): OutputFormat {
  return tarCompressionForName(dest) ? 'tar' : diskFormatForName(dest) ?? 'dir';
}

export function createImageWriter(dest: string, format: 'dir' | 'tar', options: { strict?: boolean } = {}): ImageWriter {
  if (format === 'tar') return createTarWriter(dest, { compression: tarCompressionForName(dest) ?? 'none' });
  return createDirectoryWriter(dest, options);
}
