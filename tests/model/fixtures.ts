/** Where the shared model fixtures live, and whether fixture tests must be skipped. */
import { existsSync } from "node:fs";

export const FIXTURES = "../shared/fixtures";
export const noFixtures = !existsSync(FIXTURES);
if (noFixtures) console.warn(`skipping model fixture tests: ${FIXTURES} is absent`);
