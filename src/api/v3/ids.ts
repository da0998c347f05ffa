/** A stable unsigned 64-bit id (FNV-1a) of `text`, in decimal as etcd writes its ids (cluster and member ids). */
export function id64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(text)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString();
}

/** The member id etcd's answers carry for member `name` of the cluster named by `clusterPrefix`. */
export function memberId(clusterPrefix: string, name: string): string {
  return id64(`${clusterPrefix}|${name}`);
}
