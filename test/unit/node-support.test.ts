/**
 * Node.js 22 and 24 are the supported lines (issue 14, item 11): our `engines` admits both and
 * nothing older, and no package the lockfile installs on this platform asks for another Node (npm
 * prints EBADENGINE for each one that does). The project's `.npmrc` holds only settings npm knows:
 * an unknown one made every npm command warn (item 7).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../helpers/paths.js";

/** The part of semver (installed with npm's own tooling deps) used here. */
interface Semver {
  satisfies(version: string, range: string): boolean;
  minVersion(range: string): { version: string; major: number } | null;
}
const semver = createRequire(import.meta.url)("semver") as Semver;

interface LockedPackage {
  engines?: { node?: string };
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

/** The C library npm matches a package's `libc` against on Linux: glibc unless the runtime has none. */
function currentLibc(): string {
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return header?.glibcVersionRuntime ? "glibc" : "musl";
}

/** npm's rule for `os`/`cpu`: a list of allowed values, or of `!excluded` ones. */
function allows(list: string[] | undefined, value: string): boolean {
  if (!list || list.length === 0) return true;
  if (list.includes(`!${value}`)) return false;
  const allowed = list.filter((entry) => !entry.startsWith("!"));
  return allowed.length === 0 || allowed.includes(value);
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(join(REPO_ROOT, file), "utf8")) as T;

describe("Node.js 22 and 24", () => {
  const engines = readJson<{ engines: { node: string } }>("package.json").engines.node;
  const floor = semver.minVersion(engines);
  const supported = [floor?.version ?? "0.0.0", "24.0.0"];

  it("engines admits Node 22 and 24, nothing older", () => {
    assert.ok(floor, `engines.node ${engines} has a lowest version`);
    assert.ok(floor.major >= 22, `engines.node ${engines} admits Node ${floor.version}`);
    assert.ok(semver.satisfies("24.0.0", engines), `engines.node ${engines} admits Node 24`);
  });

  it("every package installed on this platform supports the lowest Node 22 and Node 24 (no EBADENGINE)", () => {
    const packages = readJson<{ packages: Record<string, LockedPackage> }>("package-lock.json").packages;
    const refusing: string[] = [];
    const libc = currentLibc();
    for (const [path, locked] of Object.entries(packages)) {
      const range = locked.engines?.node;
      if (path === "" || !range) continue;
      // An optional package for another platform (sharp's win32-ia32 or musl build) is never installed here.
      if (!allows(locked.os, process.platform) || !allows(locked.cpu, process.arch)) continue;
      if (process.platform === "linux" && !allows(locked.libc, libc)) continue;
      for (const version of supported) {
        if (!semver.satisfies(version, range)) refusing.push(`${path} (node ${range}) refuses ${version}`);
      }
    }
    assert.deepEqual(refusing, []);
  });

  it("npm reads the project's .npmrc without an unknown-setting warning", () => {
    const npm = spawnSync("npm", ["pkg", "get", "name"], { cwd: REPO_ROOT, encoding: "utf8" });
    assert.equal(npm.status, 0, npm.stderr);
    assert.doesNotMatch(npm.stderr, /Unknown project config/, npm.stderr);
  });
});
