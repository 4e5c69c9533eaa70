import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { kernelSource } from "../../src/gpu/pipelines.ts";

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/** `kernelSource("main")` over a temporary kernels folder holding `files` (name → WGSL). */
function sourceOf(files: Record<string, string>): string {
  const dir = Deno.makeTempDirSync();
  try {
    for (const [name, text] of Object.entries(files)) Deno.writeTextFileSync(`${dir}/${name}.wgsl`, text);
    return kernelSource("main", new URL(`${pathToFileURL(dir).href}/`));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("kernelSource() replaces the include lines of the kernels by kernels/bf16.wgsl", () => {
  const helpers = Deno.readTextFileSync(new URL("../../kernels/bf16.wgsl", import.meta.url));
  for (const file of ["matmul_tex", "matmul_pack", "lm_head"]) {
    const source = kernelSource(file);
    assert.equal(count(source, "// #include"), 0, `${file} keeps an include line`);
    assert.equal(count(source, helpers), 1, `${file} has kernels/bf16.wgsl ${count(source, helpers)} times`);
  }
});

Deno.test("kernelSource() includes each file once, through nested, repeated and circular includes", () => {
  const source = sourceOf({
    main: "// #include a\n// #include b\n// #include a\nfn main_body() {}\n",
    a: "// #include b\nfn from_a() {}",
    b: "// #include main\nfn from_b() {}",
  });
  assert.deepEqual(
    ["fn from_a", "fn from_b", "fn main_body", "#include"].map((s) => count(source, s)),
    [1, 1, 1, 0],
  );
  assert(source.indexOf("fn from_b") < source.indexOf("fn from_a"), "b (included by a) comes first");
});

Deno.test("kernelSource() inserts a file at every insert line, inside function bodies too", () => {
  const source = sourceOf({
    main: "fn f() {\n  // #insert body\n}\nfn g() {\n  // #insert body\n}\n",
    body: "let shared_statement = 1u;",
  });
  assert.equal(count(source, "let shared_statement = 1u;"), 2);
  assert.equal(count(source, "#insert"), 0);
});

Deno.test("kernelSource() gives both NT matmul kernels the same tile prologue and epilogue", () => {
  const source = kernelSource("matmul_tex");
  const begin = Deno.readTextFileSync(new URL("../../kernels/matmul_nt_tile_begin.wgsl", import.meta.url));
  const end = Deno.readTextFileSync(new URL("../../kernels/matmul_nt_tile_end.wgsl", import.meta.url));
  assert.equal(count(source, begin), 2);
  assert.equal(count(source, end), 2);
});
