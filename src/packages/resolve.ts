/**
 * Dependency resolution for installing and removing Debian packages in an image, against the image's own dpkg
 * database and a PackageUniverse of sources: the choices `apt-get install` makes for the common cases (apt 2.x's
 * pkgDepCache::MarkInstall), and dpkg's unpack order. Pure: stanzas in, a plan or a DependencyError out.
 *
 * Where it differs from apt (also in docs/architecture.md, "Package resolution"): Recommends and Suggests are not followed (as apt with
 * `--no-install-recommends`); a failed alternative is undone and the next one tried at any depth (apt gives up on
 * some alternatives that only fail deeper down, and then reports held broken packages); a package whose dependency
 * would no longer hold after an upgrade is upgraded if its candidate fixes that, else removed, as apt does — but a
 * package to be installed whose dependency would be removed is an error instead of apt's problem resolver's search;
 * only the image's native architecture and `all` are resolved (installed packages of other architectures are kept and
 * satisfy relations as dpkg's Multi-Arch rules say); pins and holds are not read (every source has apt's default
 * priority 500).
 */
import { DependencyError } from '../errors.js';
import { type Deb822Paragraph, type Relation, type RelationGroup, fieldValue, formatRelation, formatRelationGroup, relationAppliesTo } from './deb822.js';
import { compareDebVersions } from './debversion.js';
import { type PackageCandidate, PackageUniverse, candidateFromParagraph, versionSatisfies } from './source.js';

/** What {@link resolveInstall} is asked: packages to install (or upgrade) and packages to remove. */
export interface InstallRequest {
  /** Packages to install or upgrade to their candidate (the highest version), or to exactly `version` (apt's `name=version`). */
  install: Array<{ name: string; version?: string }>;
  /** Installed packages to remove (with the packages that depend on them, as apt-get remove). Essential ones only if named here. */
  remove?: string[];
}

/** The options of {@link resolveInstall}. */
export interface ResolveOptions {
  /** The image's dpkg architecture (`amd64`). */
  arch: string;
}

/** One package the plan unpacks, and why it is in the plan. */
export interface PlannedInstall {
  name: string;
  version: string;
  arch: string;
  /** The installed version this replaces (an upgrade or downgrade); absent for a new package. */
  from?: string;
  /** Named in the request (else pulled in as a dependency, or upgraded for a conflict or a reverse dependency). */
  requested: boolean;
  candidate: PackageCandidate;
}

/** One package the plan removes, and why. */
export interface PlannedRemoval {
  name: string;
  version: string;
  arch: string;
  /** `requested`; `conflict` (a package to be installed conflicts with or breaks it); `dependency` (it depends on a package being removed). */
  reason: 'requested' | 'conflict' | 'dependency';
  /** For conflict and dependency: the relation, as `tmux conflicts with screen` or `foo depends on libbar`. */
  because?: string;
}

/** What {@link resolveInstall} decided: packages to unpack, in dpkg's order, and packages to remove. */
export interface InstallPlan {
  /**
   * Packages to unpack, in dpkg's order: each after the packages it depends on (a dependency loop is cut at a
   * Depends, never at a Pre-Depends), and every pre-dependency strictly before the package that pre-depends on it.
   */
  install: PlannedInstall[];
  remove: PlannedRemoval[];
}

/** dpkg Status words whose package is on the system (dpkg checks conflicts against these). */
const PRESENT = new Set(['installed', 'triggers-awaited', 'triggers-pending', 'half-configured', 'unpacked', 'half-installed']);

interface Failure {
  message: string;
  kind: DependencyError['kind'];
  package?: string;
  relation?: string;
}

/** What apt's CompareProviders looks at besides the package itself: whether it is installed and its cache order. */
type ProviderKey = { pkg: PackageCandidate; installed: boolean };

/**
 * Resolves an install/remove request the way `apt-get install` would, against the image's installed packages
 * (`installed`: the paragraphs of `var/lib/dpkg/status`) and the packages the sources offer. Each dependency is
 * satisfied by what is (or will be) installed if possible, else by the first alternative that can be installed,
 * each package at its candidate version (the highest a source offers, or the installed one if that is higher);
 * among several providers of a virtual package apt's order decides (installed, the package of that very name,
 * Essential, Important, Priority, then the one apt's cache met last). Conflicts and Breaks against installed
 * packages upgrade them if their candidate resolves it, else remove them; against packages to be installed they are
 * errors. Essential (and Protected) packages are never removed unless named in `request.remove`.
 *
 * Throws: DependencyError naming the package and the relation that cannot be satisfied (nothing is planned).
 *
 * @example
 * const plan = resolveInstall(parseDeb822(statusText), universe, { install: [{ name: 'htop' }] }, { arch: 'amd64' });
 * plan.install.map((p) => `${p.name} ${p.version}`); // ['libncursesw6 6.4-4', 'htop 3.2.2-2']
 */
export function resolveInstall(installed: Deb822Paragraph[], universe: PackageUniverse, request: InstallRequest, options: ResolveOptions): InstallPlan {
  return new Resolver(installed, universe, options.arch).run(request);
}

class Resolver {
  /** Installed packages by key (name for the native architecture and `all`, `name:arch` for others). */
  private readonly installed = new Map<string, PackageCandidate>();
  /** The plan so far: key → the version to be there (null: removed). Keys absent are as installed. */
  private target = new Map<string, PackageCandidate | null>();
  private removals = new Map<string, PlannedRemoval>();
  private readonly requested = new Set<string>();
  private readonly explicitRemove = new Set<string>();
  private readonly extraOrder = new Map<string, number>();
  /** Versions named in the request: they are the candidates of their packages (apt's SetCandidateVersion for `name=version`). */
  private readonly chosen = new Map<string, PackageCandidate>();

  constructor(status: Deb822Paragraph[], private readonly universe: PackageUniverse, private readonly arch: string) {
    for (const p of status) {
      if (p.fields.length === 0) continue;
      const words = (fieldValue(p, 'Status') ?? '').split(/\s+/);
      if (!PRESENT.has(words[2] ?? '')) continue;
      const c = candidateFromParagraph(p, 'var/lib/dpkg/status');
      this.installed.set(this.keyOf(c), c);
      if (universe.order(c.name) === Number.MAX_SAFE_INTEGER && !this.extraOrder.has(c.name)) this.extraOrder.set(c.name, this.extraOrder.size);
    }
  }

  run(request: InstallRequest): InstallPlan {
    const before = this.brokenGroups();
    for (const name of request.remove ?? []) {
      const pkg = this.installed.get(name);
      if (!pkg) throw new DependencyError(`package '${name}' is not installed, so it cannot be removed`, 'unknown-package', name);
      this.explicitRemove.add(name);
    }
    const wanted: PackageCandidate[] = [];
    for (const item of request.install) {
      const pkg = this.pick(item.name, item.version);
      if (this.explicitRemove.has(pkg.name)) throw new DependencyError(`package '${pkg.name}' is both to be installed and removed`, 'conflict', pkg.name);
      this.requested.add(pkg.name);
      if (item.version !== undefined) this.chosen.set(pkg.name, pkg);
      wanted.push(pkg);
    }
    for (const name of request.remove ?? []) {
      const f = this.remove(this.installed.get(name)!, 'requested');
      if (f) throw this.error(f);
    }
    for (const pkg of wanted) {
      const f = this.markInstall(pkg, 0);
      if (f) throw this.error(f);
    }
    const f = this.settle(before);
    if (f) throw this.error(f);
    return { install: this.unpackOrder(), remove: [...this.removals.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
  }

  private error(f: Failure): DependencyError {
    return new DependencyError(f.message, f.kind, f.package, f.relation);
  }

  private keyOf(c: PackageCandidate): string {
    return c.arch === this.arch || c.arch === 'all' ? c.name : `${c.name}:${c.arch}`;
  }

  private order(name: string): number {
    const n = this.universe.order(name);
    return n !== Number.MAX_SAFE_INTEGER ? n : Number.MAX_SAFE_INTEGER - 1_000_000 + (this.extraOrder.get(name) ?? 999_999);
  }

  /** What will be there for `key`: the planned version, null when removed, undefined when not installed at all. */
  private current(key: string): PackageCandidate | null | undefined {
    return this.target.has(key) ? this.target.get(key) : this.installed.get(key);
  }

  /** Present packages by name and by provided name, rebuilt when the plan changed (`generation`). */
  private index: { generation: number; byName: Map<string, PackageCandidate[]> } | undefined;
  private generation = 0;

  private setTarget(key: string, value: PackageCandidate | null): void {
    this.target.set(key, value);
    this.generation++;
  }

  /** The present packages named `name` or providing it. */
  private presentAs(name: string): PackageCandidate[] {
    if (this.index?.generation !== this.generation) {
      const byName = new Map<string, PackageCandidate[]>();
      const add = (n: string, c: PackageCandidate) => {
        const l = byName.get(n);
        if (l) { if (!l.includes(c)) l.push(c); } else byName.set(n, [c]);
      };
      for (const c of this.present()) {
        add(c.name, c);
        for (const v of c.provides) add(v.name, c);
      }
      this.index = { generation: this.generation, byName };
    }
    return this.index.byName.get(name) ?? [];
  }

  /** Every package that will be there, planned or installed and kept. */
  private *present(): Generator<PackageCandidate> {
    for (const c of this.target.values()) if (c) yield c;
    for (const [k, c] of this.installed) if (!this.target.has(k)) yield c;
  }

  /** apt's candidate of `name` for the native architecture: the highest version a source offers, or the installed one if higher. */
  private candidate(name: string): PackageCandidate | undefined {
    const chosen = this.chosen.get(name);
    if (chosen) return chosen;
    const offered = this.universe.lookupVersions(name).find((c) => c.arch === this.arch || c.arch === 'all');
    const inst = this.installed.get(name);
    if (inst && (!offered || compareDebVersions(inst.version, offered.version) >= 0)) return inst;
    return offered;
  }

  private same(a: PackageCandidate | null | undefined, b: PackageCandidate | null | undefined): boolean {
    return !!a && !!b && a.name === b.name && a.arch === b.arch && a.version === b.version;
  }

  /** The package a request names: a real package (at `version` if given), else the one provider of a virtual name. */
  private pick(name: string, version?: string): PackageCandidate {
    const real = name.includes(':') ? undefined : this.universe.lookupVersions(name).filter((c) => c.arch === this.arch || c.arch === 'all');
    const inst = this.installed.get(name);
    if (version !== undefined) {
      const v = [...(real ?? []), ...(inst ? [inst] : [])].find((c) => compareDebVersions(c.version, version) === 0);
      if (!v) throw new DependencyError(`version '${version}' of '${name}' is not in any source`, 'unknown-package', name);
      return v;
    }
    const c = this.candidate(name);
    if (c) return c;
    const providers = new Map<string, PackageCandidate>();
    for (const p of this.universe.lookupProviders(name)) {
      const cand = this.candidate(p.pkg.name);
      if (this.same(cand, p.pkg)) providers.set(p.pkg.name, p.pkg);
    }
    for (const p of this.installed.values()) if (p.provides.some((v) => v.name === name)) providers.set(p.name, p);
    if (providers.size === 1) return [...providers.values()][0]!;
    if (providers.size > 1) {
      const names = [...providers.keys()].sort();
      throw new DependencyError(`'${name}' is a virtual package provided by ${names.join(', ')}: name the one to install`, 'virtual', name);
    }
    throw new DependencyError(`package '${name}' is not in any source`, 'unknown-package', name);
  }

  /** dpkg's deparchsatisfied(): can `pkg` satisfy `rel` of a package of architecture `fromArch`? */
  private archOk(rel: Relation, pkg: PackageCandidate, fromArch: string): boolean {
    if (!rel.archQualifier && pkg.multiArch === 'foreign') return true;
    if (rel.archQualifier === 'any') return pkg.multiArch === 'allowed';
    const native = (a: string) => (a === 'all' || a === 'native' ? this.arch : a);
    return native(rel.archQualifier ?? fromArch) === native(pkg.arch);
  }

  /** Does `pkg` (itself or by a Provides) match `rel`? Arch qualifiers count for positive relations only. */
  private matches(rel: Relation, pkg: PackageCandidate, from: PackageCandidate | undefined, negative = false): boolean {
    if (!negative && from && !this.archOk(rel, pkg, from.arch)) return false;
    if (pkg.name === rel.name && versionSatisfies(pkg.version, rel.op, rel.version)) return true;
    return pkg.provides.some((p) => p.name === rel.name && versionSatisfies(p.version, rel.op, rel.version));
  }

  private satisfiedNow(group: RelationGroup, from: PackageCandidate): boolean {
    for (const rel of group) for (const p of this.presentAs(rel.name)) if (this.matches(rel, p, from)) return true;
    return false;
  }

  /** Every (package, group) whose dependency is unmet before anything changes: a broken image stays broken, but no worse. */
  private brokenGroups(): Set<string> {
    const out = new Set<string>();
    for (const p of this.installed.values()) {
      for (const [i, g] of this.relevant(p).entries()) if (!this.satisfiedNow(g, p)) out.add(`${this.keyOf(p)}#${i}`);
    }
    return out;
  }

  /** Pre-Depends then Depends, alternatives that do not apply to this architecture dropped (empty groups too). */
  private relevant(p: PackageCandidate): RelationGroup[] {
    return [...p.preDepends, ...p.depends].map((g) => g.filter((r) => relationAppliesTo(r, this.arch))).filter((g) => g.length > 0);
  }

  /** apt's CompareProviders for a dependency on `target`: negative when `a` is preferred. */
  private compareProviders(a: ProviderKey, b: ProviderKey, target: string): number {
    if (a.installed !== b.installed) return a.installed ? -1 : 1;
    const an = a.pkg.name === target;
    const bn = b.pkg.name === target;
    if (an !== bn) return an ? -1 : 1;
    if (a.pkg.essential !== b.pkg.essential) return a.pkg.essential ? -1 : 1;
    if (a.pkg.important !== b.pkg.important) return a.pkg.important ? -1 : 1;
    if (a.pkg.priority !== b.pkg.priority) return a.pkg.priority - b.pkg.priority;
    return this.order(b.pkg.name) - this.order(a.pkg.name);
  }

  /**
   * apt's getAllPossibleSolutions(): for each alternative, the candidates that would satisfy it (the package of that
   * name and the providers), sorted by CompareProviders; the installed ones (upgrades) of every alternative first,
   * then the new ones in alternative order.
   */
  private solutions(group: RelationGroup, from: PackageCandidate): PackageCandidate[] {
    const upgrades: PackageCandidate[] = [];
    const fresh: PackageCandidate[] = [];
    for (const rel of group) {
      const found = new Map<string, PackageCandidate>();
      const consider = (name: string) => {
        const c = this.candidate(name);
        if (c && this.current(this.keyOf(c)) !== null && this.matches(rel, c, from)) found.set(c.name, c);
      };
      consider(rel.name);
      for (const p of this.universe.lookupProviders(rel.name)) consider(p.pkg.name);
      for (const p of this.installed.values()) if (p.provides.some((v) => v.name === rel.name)) consider(p.name);
      const sorted = [...found.values()]
        .map((pkg) => ({ pkg, installed: this.installed.has(pkg.name) }))
        .sort((a, b) => this.compareProviders(a, b, rel.name));
      for (const s of sorted) (s.installed ? upgrades : fresh).push(s.pkg);
    }
    return [...new Set([...upgrades, ...fresh])];
  }

  /** Why nothing satisfies `rel`: no such package, or a candidate of the wrong version. */
  private missing(from: PackageCandidate, group: RelationGroup, pre: boolean): Failure {
    const verb = pre ? 'pre-depends on' : 'depends on';
    const text = formatRelationGroup(group);
    if (group.length === 1 && group[0]!.op) {
      const c = this.candidate(group[0]!.name);
      if (c) {
        return { kind: 'version', package: from.name, relation: text, message: `${from.name} ${verb} ${text}, but the candidate version of '${c.name}' is ${c.version}` };
      }
    }
    return { kind: 'missing', package: from.name, relation: text, message: `${from.name} ${verb} ${text}, which no source provides` };
  }

  /** Plans `pkg` and what it needs; on failure every change made on the way is undone. */
  private markInstall(pkg: PackageCandidate, depth: number): Failure | undefined {
    const key = this.keyOf(pkg);
    const now = this.current(key);
    if (this.same(now, pkg)) return undefined;
    if (now && this.requested.has(pkg.name) && this.target.has(key)) {
      return { kind: 'conflict', package: pkg.name, message: `${pkg.name} ${pkg.version} is needed, but ${now.version} is requested` };
    }
    if (now === null && this.explicitRemove.has(pkg.name)) {
      return { kind: 'conflict', package: pkg.name, message: `${pkg.name} is needed, but it is to be removed` };
    }
    if (depth > 200) return { kind: 'missing', package: pkg.name, message: `dependencies of '${pkg.name}' nest too deeply` };
    const saved = { target: new Map(this.target), removals: new Map(this.removals) };
    const fail = (f: Failure) => {
      this.target = saved.target;
      this.removals = saved.removals;
      this.generation++;
      return f;
    };
    const previous = this.installed.get(key);
    this.setTarget(key, pkg);

    // Conflicts and Breaks, both ways: a planned package in the way is an error; an installed one is upgraded if its
    // candidate resolves it (apt's MarkInstall_RemoveConflictsIfNotUpgradeable), else removed.
    for (const [field, groups] of [['conflicts with', pkg.conflicts], ['breaks', pkg.breaks]] as const) {
      for (const group of groups) {
        for (const rel of group) {
          if (!relationAppliesTo(rel, this.arch)) continue;
          for (const other of [...this.presentAs(rel.name)]) {
            if (other.name === pkg.name || !this.matches(rel, other, undefined, true)) continue;
            const f = this.clear(other, rel, (c) => this.matches(rel, c, undefined, true), `${pkg.name} ${field} ${formatRelation(rel)}`, depth);
            if (f) return fail(f);
          }
        }
      }
    }
    for (const other of [...this.present()]) {
      if (other.name === pkg.name) continue;
      for (const [field, groups] of [['conflicts with', other.conflicts], ['breaks', other.breaks]] as const) {
        const hit = groups.flat().find((rel) => relationAppliesTo(rel, this.arch) && this.matches(rel, pkg, undefined, true));
        if (!hit) continue;
        const clash = (c: PackageCandidate) => [...c.conflicts, ...c.breaks].flat().some((r) => relationAppliesTo(r, this.arch) && this.matches(r, pkg, undefined, true));
        const f = this.clear(other, hit, clash, `${other.name} ${field} ${formatRelation(hit)}`, depth);
        if (f) return fail(f);
      }
    }

    // Installed packages whose dependency the old version met and the new one does not: upgrade them or remove them
    // (apt's MarkInstall_CollectReverseDepends and UpgradeOrRemoveConflicts).
    if (previous) {
      for (const other of [...this.present()]) {
        if (other.name === pkg.name || this.target.has(this.keyOf(other))) continue;
        for (const group of this.relevant(other)) {
          const touches = group.some((r) => this.matches(r, previous, other));
          if (!touches || this.satisfiedNow(group, other)) continue;
          const up = this.candidate(other.name);
          const f = up && !this.same(up, other) ? this.markInstall(up, depth + 1) : { kind: 'missing' as const, message: '' };
          if (f) {
            const g = this.remove(other, 'dependency', `${other.name} depends on ${formatRelationGroup(group)}`);
            if (g) return fail(g);
          }
          break;
        }
      }
    }

    // Pre-Depends and Depends: already met, else the first solution that can be planned.
    for (const [i, group] of this.relevant(pkg).entries()) {
      if (this.satisfiedNow(group, pkg)) continue;
      const pre = i < pkg.preDepends.length;
      const options = this.solutions(group, pkg);
      if (options.length === 0) return fail(this.missing(pkg, group, pre));
      let last: Failure | undefined;
      let ok = false;
      for (const s of options) {
        last = this.markInstall(s, depth + 1);
        if (!last) { ok = true; break; }
      }
      if (!ok) return fail(last!);
    }
    return undefined;
  }

  /** Gets `other` out of the way of a conflict: upgrade it if its candidate is clear (`stillClashes` false), else remove it. */
  private clear(other: PackageCandidate, rel: Relation, stillClashes: (c: PackageCandidate) => boolean, because: string, depth: number): Failure | undefined {
    const key = this.keyOf(other);
    if (this.target.has(key)) {
      return { kind: 'conflict', package: other.name, relation: formatRelation(rel), message: `${because}, but ${other.name} ${other.version} is to be installed` };
    }
    const up = this.candidate(other.name);
    if (up && !this.same(up, other) && !stillClashes(up) && !this.markInstall(up, depth + 1)) return undefined;
    return this.remove(other, 'conflict', because);
  }

  private remove(pkg: PackageCandidate, reason: PlannedRemoval['reason'], because?: string): Failure | undefined {
    const key = this.keyOf(pkg);
    if (reason !== 'requested') {
      if (this.requested.has(pkg.name)) {
        return { kind: 'conflict', package: pkg.name, message: `${because}, but ${pkg.name} is requested` };
      }
      if ((pkg.essential || pkg.protected) && !this.explicitRemove.has(pkg.name)) {
        return { kind: 'essential', package: pkg.name, message: `${because}, and ${pkg.name} is ${pkg.essential ? 'Essential' : 'Protected'}: it is removed only when asked for by name` };
      }
    }
    this.setTarget(key, null);
    this.removals.set(key, { name: pkg.name, version: pkg.version, arch: pkg.arch, reason, ...(because ? { because } : {}) });
    return undefined;
  }

  /**
   * After the requests: every package that stays must still have its dependencies (those it had before). An
   * installed one that lost a dependency is upgraded if that helps, else removed (as apt-get remove does to reverse
   * dependencies); a planned one is an error.
   */
  private settle(before: Set<string>): Failure | undefined {
    for (let changed = true; changed;) {
      changed = false;
      for (const p of [...this.present()]) {
        const key = this.keyOf(p);
        const planned = this.target.has(key);
        for (const [i, group] of this.relevant(p).entries()) {
          if ((!planned && before.has(`${key}#${i}`)) || this.satisfiedNow(group, p)) continue;
          const verb = i < p.preDepends.length ? 'pre-depends on' : 'depends on';
          if (planned) return { kind: 'missing', package: p.name, relation: formatRelationGroup(group), message: `${p.name} ${verb} ${formatRelationGroup(group)}, which is to be removed` };
          const up = this.candidate(p.name);
          if (up && !this.same(up, p) && !this.markInstall(up, 1)) { changed = true; break; }
          const f = this.remove(p, 'dependency', `${p.name} ${verb} ${formatRelationGroup(group)}`);
          if (f) return f;
          changed = true;
          break;
        }
      }
    }
    return undefined;
  }

  /**
   * dpkg order of the planned installs, as apt's simulation lists them: depth-first over the planned packages by
   * name, each after its Pre-Depends and Depends and after the upgrades of installed packages it conflicts with or
   * breaks; Pre-Depends fixed up after.
   */
  private unpackOrder(): PlannedInstall[] {
    const plan = [...this.target.entries()].filter(([k, c]) => c && !this.same(c, this.installed.get(k))).map(([, c]) => c!);
    plan.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0));
    const inPlan = new Map(plan.map((c) => [this.keyOf(c), c]));
    const out: PackageCandidate[] = [];
    const seen = new Set<string>();
    const provider = (group: RelationGroup, from: PackageCandidate) => {
      for (const rel of group) for (const c of inPlan.values()) if (this.matches(rel, c, from)) return c;
      return undefined;
    };
    const visit = (c: PackageCandidate) => {
      const key = this.keyOf(c);
      if (seen.has(key)) return;
      seen.add(key);
      for (const group of this.relevant(c)) {
        const dep = provider(group, c);
        if (dep) visit(dep);
      }
      for (const rel of [...c.conflicts, ...c.breaks].flat()) {
        for (const [k, old] of this.installed) {
          const up = inPlan.get(k);
          if (up && up !== c && this.matches(rel, old, undefined, true)) visit(up);
        }
      }
      out.push(c);
    };
    for (const c of plan) visit(c);
    // A Depends loop may have put a package before its pre-dependency: move the pre-dependency up (bounded: a
    // Pre-Depends loop cannot be ordered, and dpkg refuses it too).
    for (let round = 0, moved = true; moved; round++) {
      moved = false;
      if (round > out.length * out.length + 1) {
        throw new DependencyError(`packages ${out.map((c) => c.name).join(', ')} pre-depend on each other in a loop`, 'conflict');
      }
      for (let i = 0; i < out.length && !moved; i++) {
        const c = out[i]!;
        for (const group of c.preDepends) {
          const dep = provider(group.filter((r) => relationAppliesTo(r, this.arch)), c);
          const j = dep ? out.indexOf(dep) : -1;
          if (j > i) {
            out.splice(j, 1);
            out.splice(i, 0, dep!);
            moved = true;
            break;
          }
        }
      }
    }
    return out.map((c) => {
      const prev = this.installed.get(this.keyOf(c));
      return { name: c.name, version: c.version, arch: c.arch, ...(prev ? { from: prev.version } : {}), requested: this.requested.has(c.name), candidate: c };
    });
  }
}
