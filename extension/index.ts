/**
 * The one place that registers farlab's magics: importing this module (the executor child does,
 * before it builds its magic router) adds every handler to the default registry.
 */
import { registerMagic } from "./magics/registry";
import { createRemoteCommandMagic } from "./remote/remote-command";
import { createRemoteCellMagic } from "./remote/remote-magic";
import { createSecretMagic } from "./remote/secret-magic";
import { createVolumeMagic } from "./remote/volume-magic";
import { createMapMagic } from "./remote/map-magic";

registerMagic(createRemoteCellMagic());
registerMagic(createRemoteCommandMagic());
registerMagic(createMapMagic());
registerMagic(createVolumeMagic());
registerMagic(createSecretMagic());
