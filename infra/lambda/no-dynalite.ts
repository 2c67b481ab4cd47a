/**
 * Stands in for `dynalite` in the Lambda bundle (an esbuild alias, see
 * infra/workers.ts). The Lambda handlers always use DynamoDB (TASKS_TABLE);
 * dynalite is the embedded default's in-process database, and its LevelDB
 * native binding cannot be bundled by esbuild.
 */
export default function dynalite(): never {
  throw new Error('The embedded DynamoDB (dynalite) is not part of the Lambda bundle: set TASKS_TABLE');
}
