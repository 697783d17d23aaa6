package castore.s3;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.service.BackendWarmUp;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.ClosurePutter;
import castore.service.Store;
import java.io.IOException;
import java.net.URI;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Runs an S3 store's read path, the AWS SDK's request pipeline included, against
 * {@link InMemoryS3Http}: a fresh JVM otherwise interprets and compiles the SDK's code during
 * its first real reads, about 40% of the mount's CPU for a first GiB over S3
 * (docs/performance.md, "Session 23"). It writes a multi-chunk blob and a directory into that
 * in-memory S3, then reads them back, chunk by chunk as a mount's cache does, until it has made
 * {@value #GETS} GETs. The real bucket is never contacted. (The JDK's HTTP connection code,
 * which needs a socket, stays cold.) The launcher's AOT training runs it too, so the SDK's
 * classes come from the AOT cache.
 */
public final class S3WarmUp implements BackendWarmUp, AutoCloseable {
    /** Enough for the JIT to compile the per-request code (C1 compiles a method after about 200 calls). */
    static final int GETS = 600;
    private static final int BLOB_BYTES = 3 << 20;
    /** Object GETs the last warm-up made (all of them in memory). */
    private volatile long getsMade;

    long getsMade() {
        return getsMade;
    }

    @Override
    public void warmUp(BooleanSupplier stop) throws Exception {
        var http = new InMemoryS3Http();
        try {
            run(http, stop);
        } finally {
            getsMade = http.gets();
        }
    }

    private static void run(InMemoryS3Http http, BooleanSupplier stop) throws Exception {
        var builder = S3Client.builder().httpClient(http).region(Region.US_EAST_1)
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create("warm-up", "warm-up")))
                .endpointOverride(URI.create("http://castore-warm-up.invalid")).forcePathStyle(true);
        S3StoreProvider.configure(builder);
        try (Store store = S3StoreProvider.open(builder.build(), S3Location.parse(URI.create("s3://warm-up/castore")))) {
            byte[] data = new byte[BLOB_BYTES];
            new Random(BLOB_BYTES).nextBytes(data);
            B3Digest blob;
            try (BlobWriter writer = store.blobs().create()) {
                writer.write(data, 0, data.length);
                blob = writer.finish();
            }
            Directory directory = Directory.builder().add("data.bin", new FileNode(blob, data.length, false)).build();
            ClosurePutter closure = store.directories().putClosure();
            closure.put(directory);
            closure.finish();
            while (http.gets() < GETS && !stop.getAsBoolean()) {
                List<ChunkMeta> chunks = store.blobs().chunks(blob).orElseThrow(() -> new IOException("warm-up blob vanished"));
                for (ChunkMeta chunk : chunks) {
                    if (stop.getAsBoolean()) {
                        return;
                    }
                    store.blobs().readChunk(chunk).orElseThrow(() -> new IOException("warm-up chunk vanished"));
                }
                store.directories().get(directory.digest()).orElseThrow(() -> new IOException("warm-up directory vanished"));
            }
        }
    }

    @Override
    public void close() {
        // holds nothing between warm-ups
    }
}
