/** The `*` and `?` wildcards of ssh_config and known_hosts patterns, as a whole-string RegExp. */
export function globRegExp(pattern: string, flags = ""): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, flags);
}
