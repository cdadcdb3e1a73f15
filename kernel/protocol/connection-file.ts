/** The kernel connection file (written by the frontend, read by the kernel). */
import { readFile } from "node:fs/promises";
import { z } from "zod";

const connectionSchema = z.object({
  transport: z.enum(["tcp", "ipc"]).default("tcp"),
  ip: z.string().default("127.0.0.1"),
  shell_port: z.number().int(),
  iopub_port: z.number().int(),
  stdin_port: z.number().int(),
  control_port: z.number().int(),
  hb_port: z.number().int(),
  key: z.string().default(""),
  signature_scheme: z.string().default("hmac-sha256"),
  kernel_name: z.string().optional(),
});

export type ConnectionInfo = z.infer<typeof connectionSchema>;
export type Channel = "shell" | "iopub" | "stdin" | "control" | "hb";

export async function readConnectionFile(path: string): Promise<ConnectionInfo> {
  const raw = JSON.parse(await readFile(path, "utf8")) as unknown;
  const parsed = connectionSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`connection file ${path} is invalid: ${parsed.error.message}`);
  return parsed.data;
}

/** The ZeroMQ endpoint of one channel (ipc transport: "<ip>-<port>", as jupyter_client names it). */
export function channelUrl(info: ConnectionInfo, channel: Channel): string {
  const port = info[`${channel}_port`];
  return info.transport === "ipc" ? `ipc://${info.ip}-${port}` : `tcp://${info.ip}:${port}`;
}
