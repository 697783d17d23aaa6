// bench/S3Bench.java: two measurements behind docs/performance.md, "Verify and gc over S3", run
// as a single-file program on the CLI's classpath (after ./castore has built it once):
//
//   CP=$(ls cli/target/lib/*.jar | tr '\n' :)
//   AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=us-east-1 \
//     $JAVA_HOME/bin/java -cp "$CP" bench/S3Bench.java list ENDPOINT BUCKET PREFIX [SHARDS_AT_ONCE]
//       times listing PREFIX/chunks/, blobs/ and directories/ whole (one page after another) and
//       shard by shard (its 256 two-hex-digit shards, SHARDS_AT_ONCE at once, default 16)
//   ... bench/S3Bench.java put-roots STORE_ADDRESS COUNT NAME_PREFIX
//       puts COUNT symlink roots NAME_PREFIX00000... into the store (for timing `castore roots`)
//   ... bench/S3Bench.java heads ENDPOINT BUCKET KEY [ROUNDS]
//       HEADs KEY 1,000 times a round, one after another, through a client configured as castore's
//       (URLConnection HTTP client, checksums only when required), and prints this process's CPU
//       time per HEAD each round; then the same through a bare HttpURLConnection (unsigned: the
//       server's 403 costs it as much), the HTTP part alone (docs/performance.md, "S3: the SDK's CPU
//       per request")
import castore.model.Name;
import castore.model.SymlinkNode;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.net.URI;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;

public class S3Bench {
    public static void main(String[] args) throws Exception {
        switch (args.length > 0 ? args[0] : "") {
            case "list" -> list(args[1], args[2], args[3], args.length > 4 ? Integer.parseInt(args[4]) : 16);
            case "put-roots" -> putRoots(args[1], Integer.parseInt(args[2]), args[3]);
            case "heads" -> heads(args[1], args[2], args[3], args.length > 4 ? Integer.parseInt(args[4]) : 8);
            default -> throw new IllegalArgumentException("usage: see the comment at the top of bench/S3Bench.java");
        }
    }

    private static long count(S3Client client, String bucket, String prefix) {
        String continuation = null;
        long keys = 0;
        do {
            var page = client.listObjectsV2(ListObjectsV2Request.builder().bucket(bucket).prefix(prefix).continuationToken(continuation).build());
            keys += page.contents().size();
            continuation = Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null;
        } while (continuation != null);
        return keys;
    }

    private static void list(String endpoint, String bucket, String prefix, int shardsAtOnce) throws Exception {
        try (S3Client client = S3Client.builder().endpointOverride(URI.create(endpoint)).region(Region.US_EAST_1)
                .forcePathStyle(true).build()) {
            for (String kind : List.of("chunks/", "blobs/", "directories/")) {
                long start = System.nanoTime();
                long whole = count(client, bucket, prefix + "/" + kind);
                System.out.printf("%s whole: %d keys in %.2f s%n", kind, whole, (System.nanoTime() - start) / 1e9);
                start = System.nanoTime();
                Semaphore slots = new Semaphore(shardsAtOnce);
                long sharded = 0;
                try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
                    List<Future<Long>> shards = new ArrayList<>();
                    for (int i = 0; i < 256; i++) {
                        String shard = prefix + "/" + kind + HexFormat.of().toHexDigits((byte) i) + "/";
                        shards.add(pool.submit(() -> {
                            slots.acquire();
                            try {
                                return count(client, bucket, shard);
                            } finally {
                                slots.release();
                            }
                        }));
                    }
                    for (Future<Long> shard : shards) {
                        sharded += shard.get();
                    }
                }
                System.out.printf("%s by shard, %d at once: %d keys in %.2f s%n", kind, shardsAtOnce, sharded,
                        (System.nanoTime() - start) / 1e9);
            }
        }
    }

    private static void heads(String endpoint, String bucket, String key, int rounds) throws Exception {
        var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        try (S3Client client = S3Client.builder()
                .httpClientBuilder(software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient.builder())
                .endpointOverride(URI.create(endpoint)).region(Region.US_EAST_1).forcePathStyle(true)
                .requestChecksumCalculation(software.amazon.awssdk.core.checksums.RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(software.amazon.awssdk.core.checksums.ResponseChecksumValidation.WHEN_REQUIRED)
                .build()) {
            var head = software.amazon.awssdk.services.s3.model.HeadObjectRequest.builder().bucket(bucket).key(key).build();
            for (int round = 0; round < rounds; round++) {
                long cpu = os.getProcessCpuTime();
                for (int i = 0; i < 1000; i++) {
                    client.headObject(head);
                }
                System.out.printf("SDK round %d: %.0f us CPU per HEAD%n", round, (os.getProcessCpuTime() - cpu) / 1e6);
            }
        }
        URI uri = URI.create(endpoint + "/" + bucket + "/" + key);
        for (int round = 0; round < rounds; round++) {
            long cpu = os.getProcessCpuTime();
            for (int i = 0; i < 1000; i++) {
                var connection = (java.net.HttpURLConnection) uri.toURL().openConnection();
                connection.setRequestMethod("HEAD");
                connection.getResponseCode();
                var body = connection.getErrorStream(); // read to the end, so the connection is kept
                if (body != null) {
                    body.readAllBytes();
                    body.close();
                }
            }
            System.out.printf("HttpURLConnection round %d: %.0f us CPU per HEAD%n", round, (os.getProcessCpuTime() - cpu) / 1e6);
        }
    }

    private static void putRoots(String address, int count, String namePrefix) throws Exception {
        try (var store = Stores.open(address, StoreOptions.DEFAULT)) {
            for (int i = 0; i < count; i++) {
                store.roots().put(Name.of(String.format("%s%05d", namePrefix, i)), SymlinkNode.of("target-" + i));
            }
        }
    }
}
