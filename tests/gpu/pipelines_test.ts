import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { kernelSource } from "../../src/gpu/pipelines.ts";

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
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
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/main.wgsl`,
      "// #include a\n// #include b\n// #include a\nfn main_body() {}\n",
    );
    Deno.writeTextFileSync(`${dir}/a.wgsl`, "// #include b\nfn from_a() {}");
    Deno.writeTextFileSync(`${dir}/b.wgsl`, "// #include main\nfn from_b() {}");
    const source = kernelSource("main", new URL(`${pathToFileURL(dir).href}/`));
    assert.deepEqual(
      ["fn from_a", "fn from_b", "fn main_body", "#include"].map((s) => count(source, s)),
      [1, 1, 1, 0],
    );
    assert(source.indexOf("fn from_b") < source.indexOf("fn from_a"), "b (included by a) comes first");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("kernelSource() inserts a file at every insert line, inside function bodies too", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/main.wgsl`,
      "fn f() {\n  // #insert body\n}\nfn g() {\n  // #insert body\n}\n",
    );
    Deno.writeTextFileSync(`${dir}/body.wgsl`, "let shared_statement = 1u;");
    const source = kernelSource("main", new URL(`${pathToFileURL(dir).href}/`));
    assert.equal(count(source, "let shared_statement = 1u;"), 2);
    assert.equal(count(source, "#insert"), 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("kernelSource() gives both NT matmul kernels the same tile prologue and epilogue", () => {
  const source = kernelSource("matmul_tex");
  const begin = Deno.readTextFileSync(new URL("../../kernels/matmul_nt_tile_begin.wgsl", import.meta.url));
  const end = Deno.readTextFileSync(new URL("../../kernels/matmul_nt_tile_end.wgsl", import.meta.url));
  assert.equal(count(source, begin), 2);
  assert.equal(count(source, end), 2);
});
