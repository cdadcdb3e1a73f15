/**
 * `%secret SUBCOMMAND ...`: values a cell needs but a notebook must not hold (shared/MAGICS.md).
 *
 *   set NAME KEY [KEY...]            asks for each value with a password prompt (Jupyter stdin)
 *   set NAME --from-env KEY[,KEY]    takes the values from the kernel's environment
 *   list                             names and keys, never values
 *   delete NAME                      (all take agent=)
 *
 * Values go straight from the prompt (or the environment) into one `secret_set` request; they are
 * never shown, returned, logged or kept in the kernel.
 */
import { SECRET_KEY, SECRET_NAME } from "../../remote-agent/secrets/store";
import { MagicUsageError } from "../magics/errors";
import { PlainText } from "../magics/help";
import type { MagicHandler, ParsedMagic } from "../magics/types";
import { agents, type AgentRegistry } from "./agents";
import { AgentRequestError } from "./errors";
import { report } from "./tables";

const USAGE = "set NAME KEY [KEY...] | set NAME --from-env KEY[,KEY] | list | delete NAME";

export function createSecretMagic(registry: AgentRegistry = agents, environment: NodeJS.ProcessEnv = process.env): MagicHandler {
  return {
    spec: {
      name: "secret",
      kind: "line",
      help: "secrets on an agent, injected into %%remote sessions with secrets=NAME",
      subcommands: ["set", "list", "delete"],
      usage: USAGE,
      positionals: [1, Infinity],
      options: [{ name: "agent", type: { kind: "string" }, help: "agent that keeps the secret; default: the default agent" }],
      flags: [{ name: "from-env", help: "set: take the values from the kernel's environment variables of the same names" }],
    },
    run: async (magic, ctx) => {
      const [subcommand, name, ...rest] = magic.positionals;
      const fail = (what: string): never => {
        throw new MagicUsageError(`%secret ${subcommand}: ${what} (usage: %secret ${USAGE} [agent=NAME])`);
      };
      if (magic.flags.has("from-env") && subcommand !== "set") fail("--from-env is accepted by set only");
      if (subcommand === "list" && name !== undefined) fail(`unexpected argument '${name}'`);
      if (subcommand !== "list") {
        if (name === undefined) fail("missing the secret NAME");
        if (!SECRET_NAME.test(name)) fail(`'${name}' is not a secret name; accepted: ${SECRET_NAME.source}`);
      }
      if (subcommand === "delete" && rest.length > 0) fail(`unexpected argument '${rest[0]}'`);
      const client = registry.client(magic.options.agent as string | undefined);
      try {
        if (subcommand === "list") {
          const reply = await client.request({ type: "secret_list" });
          return report(`agent '${client.name}'`, [
            {
              title: "Secrets",
              headers: ["name", "keys", "updated"],
              rows: reply.secrets.map((s) => [s.name, s.keys.join(", "), new Date(s.updatedAt).toISOString().slice(0, 19).replace("T", " ")]),
              empty: "none (set one with %secret set NAME KEY)",
            },
          ]);
        }
        if (subcommand === "delete") {
          await client.request({ type: "secret_delete", name });
          return new PlainText(`deleted secret '${name}' on agent '${client.name}'`);
        }
        const values = await collectValues(magic, rest, fail, environment, (prompt) => ctx.input(prompt, true));
        const reply = await client.request({ type: "secret_set", name, values });
        return new PlainText(`stored secret '${name}' (keys ${reply.keys.join(", ")}) on agent '${client.name}'; use it with %%remote secrets=${name}`);
      } catch (error) {
        if (error instanceof AgentRequestError && error.code === "usage") throw new MagicUsageError(error.message);
        throw error;
      }
    },
  };
}

async function collectValues(
  magic: ParsedMagic,
  rest: string[],
  fail: (what: string) => never,
  environment: NodeJS.ProcessEnv,
  ask: (prompt: string) => Promise<string>,
): Promise<Record<string, string>> {
  const fromEnv = magic.flags.has("from-env");
  const keys = fromEnv ? rest.flatMap((k) => k.split(",")).filter(Boolean) : rest;
  if (keys.length === 0) fail(fromEnv ? "--from-env needs the KEYs to take (e.g. --from-env API_TOKEN,API_USER)" : "missing the KEYs to set");
  for (const key of keys) if (!SECRET_KEY.test(key)) fail(`'${key}' is not an environment variable name; accepted: ${SECRET_KEY.source}`);
  if (new Set(keys).size !== keys.length) fail("a KEY is given twice");
  const values: Record<string, string> = {};
  for (const key of keys) {
    if (fromEnv) {
      const value = environment[key];
      if (value === undefined) fail(`the kernel's environment has no variable ${key}`);
      values[key] = value as string;
    } else {
      values[key] = await ask(`${magic.positionals[1]} ${key}: `);
    }
  }
  return values;
}
