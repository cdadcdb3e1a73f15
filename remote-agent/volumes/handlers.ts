/**
 * The agent's handlers for volume and secret requests, merged into the one handler table
 * (../agent/handlers.ts). Requests that carry secret values (`secret_set`) are never logged: the
 * dispatcher logs only request types and ids, and the store logs names and keys.
 */
import type { HandlerTable } from "../agent/dispatcher";
import type { SecretStore } from "../secrets/store";
import type { VolumeStore } from "./store";
import type { TransferManager } from "./transfers";

type VolumeRequestType =
  | "volume_create"
  | "volume_list"
  | "volume_ls"
  | "volume_rm"
  | "volume_delete"
  | "volume_put"
  | "volume_get"
  | "transfer_chunk"
  | "transfer_read"
  | "transfer_end"
  | "transfer_abort"
  | "secret_set"
  | "secret_list"
  | "secret_delete";

export function createVolumeHandlers(
  volumes: VolumeStore,
  transfers: TransferManager,
  secrets: SecretStore,
): Pick<HandlerTable, VolumeRequestType> {
  return {
    volume_create: (request) => ({ of: "volume_create", created: volumes.create(request.name) }),
    volume_list: async () => ({ of: "volume_list", volumes: await volumes.list() }),
    volume_ls: async (request) => ({ of: "volume_ls", ...(await volumes.ls(request.name, request.path)) }),
    volume_rm: async (request) => ({ of: "volume_rm", removed: await volumes.rm(request.name, request.path, request.recursive) }),
    volume_delete: async (request) => {
      await volumes.delete(request.name);
      return { of: "volume_delete" };
    },
    volume_put: async (request, { connection }) => ({
      of: "volume_put",
      ...(await transfers.beginPut(connection, request.name, request.path, request.kind, request.streamBytes)),
    }),
    volume_get: async (request, { connection }) => ({ of: "volume_get", ...(await transfers.beginGet(connection, request.name, request.path)) }),
    transfer_chunk: async (request, { payload }) => ({ of: "transfer_chunk", ...(await transfers.chunk(request.transferId, request.seq, payload)) }),
    transfer_read: async (request, { attachPayload }) => {
      const { payload, ...body } = await transfers.read(request.transferId, request.seq);
      if (payload) attachPayload(payload);
      return { of: "transfer_read", ...body };
    },
    transfer_end: async (request) => ({ of: "transfer_end", ...(await transfers.end(request.transferId, request.sha256)) }),
    transfer_abort: async (request) => {
      await transfers.abort(request.transferId);
      return { of: "transfer_abort" };
    },
    secret_set: (request) => ({ of: "secret_set", name: request.name, keys: secrets.set(request.name, request.values) }),
    secret_list: () => ({ of: "secret_list", secrets: secrets.list() }),
    secret_delete: (request) => {
      secrets.delete(request.name);
      return { of: "secret_delete" };
    },
  };
}
