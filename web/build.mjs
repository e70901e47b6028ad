// The client's build (make web): type-check with tsc, bundle with esbuild, and check the size
// budget. It writes
//   dist/track.js      the plain script (IIFE) that defines window.track, minified;
//   dist/track.mjs     the ES module for bundlers, minified;
//   dist/types/        the type declarations (tsc);
//   dist/otel-logs.js  the same job on the OpenTelemetry JS logs SDK, only to compare sizes;
//   dist/sizes.json    the minified and gzipped sizes of both.
// It fails when track.js is over the budget of 8 KiB gzipped.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const BUDGET = 8 * 1024;

rmSync("dist", { recursive: true, force: true });
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "."], { stdio: "inherit" });

const common = { bundle: true, minify: true, target: "es2019", platform: "browser", legalComments: "none", logLevel: "warning" };
await Promise.all([
  esbuild.build({ ...common, entryPoints: ["src/script.ts"], format: "iife", outfile: "dist/track.js" }),
  esbuild.build({ ...common, entryPoints: ["src/track.ts"], format: "esm", outfile: "dist/track.mjs" }),
  esbuild.build({ ...common, entryPoints: ["src/otel.ts"], format: "iife", outfile: "dist/otel-logs.js" }),
]);

const size = (f) => {
  const b = readFileSync(f);
  return { minified: b.length, gzipped: gzipSync(b, { level: 9 }).length };
};
const sizes = { "track.js": size("dist/track.js"), "track.mjs": size("dist/track.mjs"), "otel-logs.js": size("dist/otel-logs.js") };
writeFileSync("dist/sizes.json", JSON.stringify(sizes, null, 2) + "\n");
for (const [f, s] of Object.entries(sizes)) console.log(`${f.padEnd(13)} ${String(s.minified).padStart(7)} B minified ${String(s.gzipped).padStart(6)} B gzipped`);
if (sizes["track.js"].gzipped > BUDGET) {
  console.error(`track.js is ${sizes["track.js"].gzipped} B gzipped, over the budget of ${BUDGET} B`);
  process.exit(1);
}
