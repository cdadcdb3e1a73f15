/**
 * The agent's GPUs, as `nvidia-smi` reports them. No nvidia-smi on PATH (or one that fails)
 * means no GPUs: the agent still serves CPU sessions.
 */
import { execFile } from "node:child_process";

export interface GpuDevice {
  index: number;
  uuid: string;
  name: string;
  memoryTotalMiB: number;
  memoryUsedMiB: number;
}

const QUERY = ["--query-gpu=index,uuid,name,memory.total,memory.used", "--format=csv,noheader,nounits"];

/** Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): GpuDevice[] {
  const gpus: GpuDevice[] = [];
  for (const line of csv.split("\n")) {
    if (line.trim() === "") continue;
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length < 5) continue;
    // A name could hold a comma; the three fixed fields around it cannot.
    const [index, uuid] = fields;
    const [total, used] = fields.slice(-2);
    const name = fields.slice(2, -2).join(", ");
    const gpu = { index: Number(index), uuid, name, memoryTotalMiB: Number(total), memoryUsedMiB: Number(used) };
    if (!Number.isInteger(gpu.index) || uuid === "" || name === "") continue;
    // "[N/A]" for memory on some devices: report 0 rather than dropping the GPU.
    if (!Number.isFinite(gpu.memoryTotalMiB)) gpu.memoryTotalMiB = 0;
    if (!Number.isFinite(gpu.memoryUsedMiB)) gpu.memoryUsedMiB = 0;
    gpus.push(gpu);
  }
  return gpus.sort((a, b) => a.index - b.index);
}

/** Runs nvidia-smi (found on PATH); resolves to [] when it is absent or fails. */
export function readGpuInventory(command = "nvidia-smi"): Promise<GpuDevice[]> {
  return new Promise((resolve) => {
    execFile(command, QUERY, { timeout: 15_000 }, (error, stdout) => {
      resolve(error ? [] : parseNvidiaSmi(stdout));
    });
  });
}
