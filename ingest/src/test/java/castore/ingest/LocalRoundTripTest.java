package castore.ingest;

/** The round-trip suite on the embedded local store (several chunks per big file, real packs). */
class LocalRoundTripTest extends RoundTripTest {
    @Override
    String storeAddress() {
        return tmp.resolve("store").toString();
    }
}
