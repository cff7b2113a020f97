// Types for cluster-key-slot, which ships none: the Redis Cluster hash slot of a key.
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The slot all keys share, or -1 when they do not. */
    function generateMulti(keys: (string | Buffer)[]): number;
  }
  export default calculateSlot;
}
