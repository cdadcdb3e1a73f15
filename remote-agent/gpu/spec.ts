/**
 * GPU specs as users write them in `%%remote gpu=...`, and matching them against an inventory.
 *
 *   A100          one GPU whose name contains "A100" (case-insensitive), e.g. "NVIDIA A100-SXM4-80GB"
 *   H100:2        two of them
 *   any, any:2    any GPU(s)
 *   H100|A100     fallback order: H100 if one is free, else A100
 *   H100:2|A100:4 a count belongs to its own alternative
 */

export interface GpuAlternative {
  /** Lower-cased name fragment, or "any". */
  name: string;
  count: number;
}

export interface GpuSpec {
  /** As written, for messages. */
  text: string;
  alternatives: GpuAlternative[];
}

/** The GPU facts matching needs (inventory entries carry more). */
export interface GpuIdentity {
  index: number;
  uuid: string;
  name: string;
}

export class GpuSpecError extends Error {
  override name = "GpuSpecError";
}

export const MAX_GPU_COUNT = 64;
const ACCEPTED = "accepted: a GPU name such as A100, a count such as H100:2, any, any:2, or alternatives in fallback order such as H100|A100";

export function parseGpuSpec(text: string): GpuSpec {
  const trimmed = text.trim();
  if (trimmed === "") throw new GpuSpecError(`gpu= is empty; ${ACCEPTED}`);
  const alternatives = trimmed.split("|").map((part): GpuAlternative => {
    const match = /^([A-Za-z0-9][A-Za-z0-9 _.-]*?)\s*(?::\s*(\d+))?$/.exec(part.trim());
    if (!match) throw new GpuSpecError(`gpu=${trimmed}: cannot read '${part.trim()}'; ${ACCEPTED}`);
    const count = match[2] === undefined ? 1 : Number(match[2]);
    if (!Number.isInteger(count) || count < 1 || count > MAX_GPU_COUNT) {
      throw new GpuSpecError(`gpu=${trimmed}: the count must be between 1 and ${MAX_GPU_COUNT}, got ${match[2]}`);
    }
    return { name: match[1].toLowerCase(), count };
  });
  return { text: trimmed, alternatives };
}

export function gpuMatches(alternative: GpuAlternative, gpu: GpuIdentity): boolean {
  return alternative.name === "any" || gpu.name.toLowerCase().includes(alternative.name);
}

/** The alternative's matches among `gpus`, in index order. */
export function matchingGpus<T extends GpuIdentity>(alternative: GpuAlternative, gpus: readonly T[]): T[] {
  return gpus.filter((gpu) => gpuMatches(alternative, gpu)).sort((a, b) => a.index - b.index);
}

/** Whether some alternative could be satisfied if every GPU were free. */
export function everSatisfiable(spec: GpuSpec, inventory: readonly GpuIdentity[]): boolean {
  return spec.alternatives.some((alt) => matchingGpus(alt, inventory).length >= alt.count);
}

/** "2x NVIDIA A100-SXM4-80GB, 1x NVIDIA H100 80GB HBM3", or "no GPUs". */
export function describeInventory(inventory: readonly GpuIdentity[]): string {
  if (inventory.length === 0) return "no GPUs";
  const counts = new Map<string, number>();
  for (const gpu of inventory) counts.set(gpu.name, (counts.get(gpu.name) ?? 0) + 1);
  return [...counts].map(([name, n]) => `${n}x ${name}`).join(", ");
}
