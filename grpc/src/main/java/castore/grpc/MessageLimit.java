package castore.grpc;

/**
 * Limits castore's server and client share. {@link #BYTES}: the largest gRPC message either
 * accepts (gRPC's default is 4 MiB). A Directory is one message: 64 MiB holds one of about
 * 850,000 entries with 40-byte names (a flat directory of a dataset). Until session 35 the limit
 * was 16 MiB, and a directory of 300,000 files, which a local store keeps and mounts, could be
 * neither uploaded to nor served by a daemon.
 */
public final class MessageLimit {
    public static final int BYTES = 64 << 20;
    /**
     * Bytes one ReadBlobs may ask for in all: the server reads the answer into memory and queues
     * it for the client, and a client that asked for 1024 blobs of 16 MiB and read nothing would
     * hold 16 GiB of a daemon's memory. The client cuts its requests to it.
     */
    public static final long READ_BLOBS_BYTES = 32 << 20;

    /** Digests one HasChunks or MissingBlobs call may ask about (the server refuses more). */
    public static final int DIGESTS_PER_REQUEST = 16384;

    private MessageLimit() {
    }

    /** "64 MiB", for messages. */
    public static String display() {
        return (BYTES >> 20) + " MiB";
    }
}
