package castore.ingest;

/** The round-trip suite on the embedded local store (several chunks per big file, real packs). */
class LocalRoundTripTest extends RoundTripTest {
    @Override
    String storeAddress() {
        return tmp.resolve("store").toString();
    }

    /**
     * One thread: the local store does not yet serialise two writers storing the same new chunk
     * at the same moment (both append it), which would break the stored-once count of identical
     * files. manyFilesWithFewFilesInFlight still imports in parallel on this store.
     */
    @Override
    int importThreads() {
        return 1;
    }
}
