/** The init op: create an empty repository. */
import { Repository } from '../store/repository.js';

/** What {@link init} created: the repository's directory, its `.viva` directory and HEAD's branch. */
export interface InitResult {
  path: string;
  dataDir: string;
  head: string;
}

/**
 * Creates `dir/.viva` with HEAD on the unborn branch `main`. Throws RepositoryExistsError.
 * @example await init('/srv/images');
 */
export async function init(dir: string, options: { defaultBranch?: string } = {}): Promise<InitResult> {
  const repo = Repository.init(dir, options);
  try {
    return { path: repo.root, dataDir: repo.dataDir, head: repo.headBranch() };
  } finally {
    await repo.close();
  }
}
