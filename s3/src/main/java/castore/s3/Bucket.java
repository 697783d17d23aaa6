package castore.s3;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;
import software.amazon.awssdk.core.exception.AbortedException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.core.sync.ResponseTransformer;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.DeleteObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.HeadObjectRequest;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * The few object operations castore needs, with S3's answers mapped to Java: absent objects are
 * empty Optionals, failed preconditions are {@code false}, everything else that goes wrong
 * (network, auth, server errors) is an IOException naming the key.
 */
final class Bucket {
    /** The largest array the JVM reliably allocates. */
    private static final int MAX_ARRAY = Integer.MAX_VALUE - 8;
    private final S3Client client;
    private final S3Location location;

    Bucket(S3Client client, S3Location location) {
        this.client = client;
        this.location = location;
    }

    S3Location location() {
        return location;
    }

    /** An object's bytes and the ETag they were read with. */
    record Fetched(byte[] bytes, String etag) {
    }

    /** A listed object: key relative to the store prefix. */
    record Listed(String key, long size, Instant lastModified) {
    }

    Optional<Fetched> get(String key) throws IOException {
        try {
            return Optional.of(client.getObject(GetObjectRequest.builder().bucket(location.bucket()).key(fullKey(key)).build(),
                    (ResponseTransformer<GetObjectResponse, Fetched>) (response, body) ->
                            new Fetched(readBody(body, response.contentLength()), response.eTag())));
        } catch (S3Exception e) {
            if (e.statusCode() == 404) {
                return Optional.empty();
            }
            throw failure("get", key, e);
        } catch (SdkException e) {
            throw failure("get", key, e);
        }
    }

    /**
     * An object's body read straight into an array of its Content-Length. The SDK's
     * {@code ResponseTransformer.toBytes()} grows a ByteArrayOutputStream from a few bytes and
     * copies it out again, in 4 KiB reads that each pass through the connection's buffer: 18% of a
     * mount's CPU for a GiB of chunks over S3, where this read costs 7% (docs/performance.md,
     * "Session 23"). A body shorter or longer than its length is an error, never a short array.
     */
    static byte[] readBody(InputStream body, Long length) throws IOException {
        if (length == null || length < 0 || length > MAX_ARRAY) {
            return body.readAllBytes();
        }
        byte[] bytes = new byte[(int) (long) length];
        int read = body.readNBytes(bytes, 0, bytes.length);
        if (read < bytes.length) {
            throw new EOFException("object body ended after " + read + " of its " + length + " bytes");
        }
        if (body.read() >= 0) {
            throw new IOException("object body longer than its " + length + " bytes");
        }
        return bytes;
    }

    /** HEAD requests made so far (tests count them). */
    private final java.util.concurrent.atomic.LongAdder heads = new java.util.concurrent.atomic.LongAdder();

    long heads() {
        return heads.sum();
    }

    boolean exists(String key) throws IOException {
        return size(key).isPresent();
    }

    /** The object's size, or empty if it is absent. */
    Optional<Long> size(String key) throws IOException {
        return stat(key).map(Stat::size);
    }

    /** An object's size, and when the server last wrote it (by the server's clock). */
    record Stat(long size, Instant lastModified) {
    }

    /** The object's size and time, or empty if it is absent. */
    Optional<Stat> stat(String key) throws IOException {
        heads.increment();
        try {
            var head = client.headObject(HeadObjectRequest.builder().bucket(location.bucket()).key(fullKey(key)).build());
            return Optional.of(new Stat(head.contentLength(), head.lastModified()));
        } catch (S3Exception e) {
            if (e.statusCode() == 404) {
                return Optional.empty();
            }
            throw failure("stat", key, e);
        } catch (SdkException e) {
            throw failure("stat", key, e);
        }
    }

    /** Creates the object unless one exists (If-None-Match: *); false if it already existed. */
    boolean putIfAbsent(String key, byte[] bytes) throws IOException {
        return put(key, bytes, null, "*");
    }

    /** Replaces the object only if its ETag is still {@code etag}; false if it changed or vanished. */
    boolean putIfMatch(String key, byte[] bytes, String etag) throws IOException {
        return put(key, bytes, etag, null);
    }

    /** Unconditional write: only for objects private to this process (leases). */
    void put(String key, byte[] bytes) throws IOException {
        put(key, bytes, null, null);
    }

    private boolean put(String key, byte[] bytes, String ifMatch, String ifNoneMatch) throws IOException {
        try {
            client.putObject(PutObjectRequest.builder().bucket(location.bucket()).key(fullKey(key))
                    .ifMatch(ifMatch).ifNoneMatch(ifNoneMatch).build(), RequestBody.fromBytes(bytes));
            return true;
        } catch (S3Exception e) {
            // 412: precondition failed; 409: a concurrent conditional write won (AWS documents both).
            if (e.statusCode() == 412 || e.statusCode() == 409 || (ifMatch != null && e.statusCode() == 404)) {
                // The SDK retries a write whose response was lost: the retry then fails its own
                // precondition although the first attempt landed. The object holding exactly our
                // bytes is the state we asked for.
                return e.statusCode() != 404 && get(key).map(now -> java.util.Arrays.equals(now.bytes(), bytes)).orElse(false);
            }
            throw failure("put", key, e);
        } catch (SdkException e) {
            if ((ifMatch != null || ifNoneMatch != null) && !(e instanceof AbortedException)) {
                return conditionalOutcome(key, bytes, ifMatch, e);
            }
            throw failure("put", key, e);
        }
    }

    /**
     * A conditional write that failed in transit may have been refused: with S3Proxy on a busy
     * machine a put it should have refused with 412 failed as "Error writing request body to
     * server", as when a server answers and closes before reading the body. What the object holds
     * now decides: our bytes, it landed; a state the precondition excludes, it was refused (false);
     * otherwise the failure stands.
     */
    private boolean conditionalOutcome(String key, byte[] bytes, String ifMatch, SdkException failed) throws IOException {
        Optional<Fetched> now = get(key);
        if (now.isPresent() && java.util.Arrays.equals(now.get().bytes(), bytes)) {
            return true;
        }
        boolean refused = ifMatch == null ? now.isPresent() : now.isEmpty() || !ifMatch.equals(now.get().etag());
        if (refused) {
            return false;
        }
        throw failure("put", key, failed);
    }

    /** Deletes the object, only if its ETag is {@code etag} when that is non-null; false if the condition failed. */
    boolean delete(String key, String etag) throws IOException {
        try {
            client.deleteObject(DeleteObjectRequest.builder().bucket(location.bucket()).key(fullKey(key)).ifMatch(etag).build());
            return true;
        } catch (S3Exception e) {
            if (e.statusCode() == 412 || e.statusCode() == 404 && etag != null) {
                return false;
            }
            throw failure("delete", key, e);
        } catch (SdkException e) {
            throw failure("delete", key, e);
        }
    }

    /**
     * Objects whose key starts with {@code keyPrefix} (relative to the store prefix), in key
     * order, fetched page by page as the stream is consumed. Errors surface as
     * {@link java.io.UncheckedIOException}.
     */
    Stream<Listed> list(String keyPrefix) {
        String full = fullKey(keyPrefix);
        Iterator<Listed> it = new Iterator<>() {
            private Iterator<S3Object> page = Collections.emptyIterator();
            private String continuation;
            private boolean done;

            @Override
            public boolean hasNext() {
                while (!page.hasNext() && !done) {
                    ListObjectsV2Response response = listPage(ListObjectsV2Request.builder().prefix(full)
                            .continuationToken(continuation), keyPrefix);
                    page = response.contents().iterator();
                    continuation = response.nextContinuationToken();
                    done = !Boolean.TRUE.equals(response.isTruncated()) || continuation == null;
                }
                return page.hasNext();
            }

            @Override
            public Listed next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                return listed(page.next());
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL), false);
    }

    /** Shards {@link #listSharded} lists at once, ahead of its consumer. */
    static final int SHARDS_IN_FLIGHT = 16;
    /** Keys per page {@link #listSharded} asks for (S3's most); tests ask for fewer. */
    private volatile int pageKeys = 1000;

    void pageKeys(int keys) {
        pageKeys = keys;
    }

    /**
     * What {@link #list} gives, for a prefix whose keys sit in shards one level below it
     * ({@code chunks/ab/...}), listed shard by shard, {@value #SHARDS_IN_FLIGHT} at once, once it
     * holds more than one page. A listing is a chain of requests, each waiting for the one before:
     * over S3 a store of millions of chunks lists at a thousand keys per round trip, and S3Proxy's
     * filesystem backend walks the whole prefix for every page (53k chunks: 41 s whole, 1.5 s by
     * shard). The shards come from one listing with a delimiter, so keys outside them (foreign
     * objects a verify reports) are listed too, in their place. At most {@value #SHARDS_IN_FLIGHT}
     * shards' keys are held at once; closing the stream stops the listings under way.
     */
    Stream<Listed> listSharded(String keyPrefix) {
        String full = fullKey(keyPrefix);
        ListObjectsV2Response first = listPage(ListObjectsV2Request.builder().prefix(full).maxKeys(pageKeys), keyPrefix);
        if (!Boolean.TRUE.equals(first.isTruncated())) {
            return first.contents().stream().map(this::listed);
        }
        // The shards (common prefixes) and any keys beside them, in key order.
        TreeMap<String, Optional<Listed>> parts = new TreeMap<>();
        everyPage(ListObjectsV2Request.builder().prefix(full).delimiter("/"), keyPrefix, page -> {
            page.commonPrefixes().forEach(shard -> parts.put(shard.prefix(), Optional.empty()));
            page.contents().forEach(o -> parts.put(o.key(), Optional.of(listed(o))));
        });
        ExecutorService listings = Executors.newVirtualThreadPerTaskExecutor();
        Iterator<Map.Entry<String, Optional<Listed>>> ahead = parts.entrySet().iterator();
        // Each part's keys as they come: a key beside the shards at once, a shard when listed.
        ArrayDeque<Future<List<Listed>>> queued = new ArrayDeque<>();
        Iterator<Listed> it = new Iterator<>() {
            private Iterator<Listed> current = Collections.emptyIterator();

            @Override
            public boolean hasNext() {
                while (!current.hasNext()) {
                    while (queued.size() < SHARDS_IN_FLIGHT && ahead.hasNext()) {
                        var part = ahead.next();
                        queued.add(part.getValue().isPresent()
                                ? CompletableFuture.completedFuture(List.of(part.getValue().get()))
                                : listings.submit(() -> wholeShard(part.getKey())));
                    }
                    Future<List<Listed>> next = queued.poll();
                    if (next == null) {
                        return false;
                    }
                    current = awaitShard(next, keyPrefix).iterator();
                }
                return true;
            }

            @Override
            public Listed next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                return current.next();
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(listings::shutdownNow);
    }

    private List<Listed> wholeShard(String fullShard) {
        List<Listed> keys = new ArrayList<>();
        everyPage(ListObjectsV2Request.builder().prefix(fullShard), fullShard.substring(location.prefix().length()),
                page -> page.contents().forEach(o -> keys.add(listed(o))));
        return keys;
    }

    /** Each page of {@code request}'s listing, {@link #pageKeys} keys a page, one after another. */
    private void everyPage(ListObjectsV2Request.Builder request, String keyPrefix, Consumer<ListObjectsV2Response> page) {
        String continuation = null;
        do {
            ListObjectsV2Response answer = listPage(request.maxKeys(pageKeys).continuationToken(continuation), keyPrefix);
            page.accept(answer);
            continuation = Boolean.TRUE.equals(answer.isTruncated()) ? answer.nextContinuationToken() : null;
        } while (continuation != null);
    }

    private static List<Listed> awaitShard(Future<List<Listed>> shard, String keyPrefix) {
        try {
            return shard.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UncheckedIOException failed) {
                throw failed;
            }
            throw new UncheckedIOException(new IOException("s3 list " + keyPrefix + " failed: " + e.getCause(), e.getCause()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            var interrupted = new InterruptedIOException("s3 list " + keyPrefix + " interrupted");
            interrupted.initCause(e);
            throw new UncheckedIOException(interrupted);
        }
    }

    private ListObjectsV2Response listPage(ListObjectsV2Request.Builder request, String keyPrefix) {
        try {
            return client.listObjectsV2(request.bucket(location.bucket()).build());
        } catch (SdkException e) {
            throw new UncheckedIOException(failure("list", keyPrefix, e));
        }
    }

    private Listed listed(S3Object o) {
        return new Listed(o.key().substring(location.prefix().length()), o.size(), o.lastModified());
    }

    private String fullKey(String key) {
        return location.prefix() + key;
    }

    private IOException failure(String operation, String key, SdkException e) {
        if (e instanceof AbortedException || Thread.currentThread().isInterrupted()) {
            var interrupted = new InterruptedIOException("s3 " + operation + " " + location.display() + key + " interrupted");
            interrupted.initCause(e);
            return interrupted;
        }
        String detail = e instanceof S3Exception s3
                ? "HTTP " + s3.statusCode() + (s3.awsErrorDetails() != null && s3.awsErrorDetails().errorCode() != null
                        ? " " + s3.awsErrorDetails().errorCode() : "")
                : firstLine(e.getMessage());
        return new IOException("s3 " + operation + " " + location.display() + key + " failed: " + detail, e);
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "unknown error";
        }
        int nl = message.indexOf('\n');
        return nl < 0 ? message : message.substring(0, nl);
    }
}
