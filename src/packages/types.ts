/** The values of package inventories, shared by every package database reader (dpkg, apk, rpm). */
export type PackageFormat = 'deb' | 'apk' | 'rpm';

/** One installed package as an image's package database records it. */
export interface Package {
  name: string;
  version: string;
  arch?: string;
  /** deb: the Source field's package name (without version), when it differs from the name. */
  source?: string;
}

export interface InventoryProblem {
  /** Path of the database inside the image. */
  file: string;
  /** 1-based line where the record starts. */
  line: number;
  message: string;
}

/** The packages installed in an image, read from one package database (dpkg's status or apk's installed). */
export interface Inventory {
  format: PackageFormat;
  /** Database path inside the file system (for a disk partition: inside that partition). */
  file: string;
  /** Disk commits: the partition whose file system holds the database (`p1`); absent for a tree or a bare file system. */
  partition?: string;
  /** Sorted by name, then arch. */
  packages: Package[];
  problems: InventoryProblem[];
}
