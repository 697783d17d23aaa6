package castore.grpc.client;

import castore.grpc.MessageLimit;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.ChunkedBlobServiceGrpc;
import castore.grpc.proto.HasChunksRequest;
import castore.grpc.proto.HasChunksResponse;
import castore.grpc.proto.PutBlobResponse;
import castore.grpc.proto.ReadBlobsRequest;
import castore.grpc.proto.StatBlobRequest;
import castore.grpc.proto.StatBlobResponse;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.InvalidDataException;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A BlobService on a castore or tvix daemon. Nothing the server sends is trusted: chunk lists are
 * checked for shape, every chunk is hashed before use, uploads are hashed locally and the
 * server's digest must agree.
 */
final class RemoteBlobService implements BlobService {
    private static final B3Digest EMPTY = Blake3.digest(new byte[0]);
    private final Connection connection;

    private final SmallBlobUploads smallUploads;

    RemoteBlobService(Connection connection) {
        this.connection = connection;
        this.smallUploads = new SmallBlobUploads(connection, this);
    }

    @Override
    public boolean has(B3Digest digest) throws IOException {
        return stat(digest, false).isPresent();
    }

    /** Stat; empty on NOT_FOUND. */
    Optional<StatBlobResponse> stat(B3Digest digest, boolean sendChunks) throws IOException {
        var request = StatBlobRequest.newBuilder().setDigest(digest.toByteString()).setSendChunks(sendChunks).build();
        try {
            return Optional.of(ClientCalls.blockingUnaryCall(connection.channel, BlobServiceGrpc.getStatMethod(),
                    connection.unaryOptions(), request));
        } catch (StatusRuntimeException e) {
            if (Failures.isNotFound(e)) {
                return Optional.empty();
            }
            throw Failures.of(e, connection, "stat blob " + digest);
        }
    }

    @Override
    public Optional<BlobReader> open(B3Digest digest) throws IOException {
        Optional<StatBlobResponse> stat = stat(digest, true);
        if (stat.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(reader(digest, chunkList(digest, stat.get())));
    }

    private BlobReader reader(B3Digest digest, List<ChunkMeta> chunks) throws IOException {
        if (RemoteBlobReader.suits(chunks)) {
            return new RemoteBlobReader(connection, digest, chunks);
        }
        long size = chunks.isEmpty() ? -1 : chunks.stream().mapToLong(ChunkMeta::size).sum();
        return new SpooledBlobReader(connection, digest, size);
    }

    @Override
    public Optional<BlobReader> openChunk(B3Digest digest) throws IOException {
        return open(digest); // tvix's Stat and Read take chunk digests as well
    }

    /** One Read of the chunk digest, hashed before it is returned; no Stat, no read-ahead. */
    @Override
    public Optional<byte[]> readChunk(ChunkMeta chunk) throws IOException {
        if (chunk.size() <= 0 || chunk.size() > RemoteBlobReader.MAX_MEMORY_CHUNK) {
            return BlobService.super.readChunk(chunk);
        }
        try (RemoteBlobReader reader = new RemoteBlobReader(connection, chunk.digest(), List.of(chunk))) {
            return Optional.of(reader.chunk(0));
        } catch (castore.service.NotFoundException e) {
            return Optional.empty();
        }
    }

    /** One Read of the blob digest, cut into the listed chunks and each hashed before use. */
    @Override
    public Optional<castore.service.ChunkStream> streamChunks(B3Digest blob, List<ChunkMeta> chunks) {
        if (!RemoteBlobReader.suits(chunks)) {
            return Optional.empty();
        }
        return Optional.of(new BlobStream(connection, blob, chunks));
    }

    @Override
    public Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException {
        Optional<StatBlobResponse> stat = stat(digest, true);
        if (stat.isEmpty()) {
            return Optional.empty();
        }
        List<ChunkMeta> chunks = chunkList(digest, stat.get());
        if (!chunks.isEmpty()) {
            return Optional.of(chunks);
        }
        // The server gave no chunk list (tvix may not): the blob is one piece, of a size we
        // learn only by reading it.
        try (BlobReader whole = new SpooledBlobReader(connection, digest, -1)) {
            return Optional.of(whole.size() == 0 ? List.of() : List.of(new ChunkMeta(digest, whole.size())));
        }
    }

    /** The chunk list of a Stat answer, checked for shape (digests, sizes, a lone chunk is the blob). */
    private List<ChunkMeta> chunkList(B3Digest blob, StatBlobResponse stat) throws IOException {
        List<ChunkMeta> chunks = new ArrayList<>(stat.getChunksCount());
        long total = 0;
        for (StatBlobResponse.ChunkMeta c : stat.getChunksList()) {
            B3Digest digest;
            try {
                digest = B3Digest.of(c.getDigest());
            } catch (InvalidDataException e) {
                throw new CorruptedDataException("chunk list of blob " + blob + " from " + connection.address + ": " + e.getMessage());
            }
            if (c.getSize() == 0 && digest.equals(EMPTY)) {
                continue; // an empty chunk adds nothing (some backends list one for the empty blob)
            }
            if (c.getSize() <= 0 || c.getSize() > Integer.MAX_VALUE) {
                throw new CorruptedDataException("chunk list of blob " + blob + " from " + connection.address
                        + ": chunk size " + Long.toUnsignedString(c.getSize()) + " out of range");
            }
            try {
                total = Math.addExact(total, c.getSize());
            } catch (ArithmeticException e) {
                throw new CorruptedDataException("chunk list of blob " + blob + " from " + connection.address + ": sizes overflow");
            }
            chunks.add(new ChunkMeta(digest, c.getSize()));
        }
        if (chunks.size() == 1 && !chunks.getFirst().digest().equals(blob)) {
            throw new CorruptedDataException("chunk list of blob " + blob + " from " + connection.address
                    + ": a single chunk must be the blob itself, got " + chunks.getFirst().digest());
        }
        return chunks;
    }

    @Override
    public boolean hasChunk(B3Digest digest) throws IOException {
        if (chunkedUploads()) {
            return askHasChunks(List.of(digest)).isEmpty();
        }
        return has(digest);
    }

    /**
     * From a castore daemon, HasChunks calls of up to {@value MessageLimit#DIGESTS_PER_REQUEST}
     * digests; from a tvix server (which stores blobs whole), Stats, 32 at once.
     */
    @Override
    public List<B3Digest> missingChunks(List<B3Digest> digests) throws IOException {
        List<B3Digest> distinct = List.copyOf(new LinkedHashSet<>(digests));
        if (!chunkedUploads()) {
            return BlobService.missingByHas(this, distinct, 32);
        }
        List<B3Digest> missing = new ArrayList<>();
        for (int from = 0; from < distinct.size(); from += MessageLimit.DIGESTS_PER_REQUEST) {
            missing.addAll(askHasChunks(distinct.subList(from, Math.min(distinct.size(), from + MessageLimit.DIGESTS_PER_REQUEST))));
        }
        return missing;
    }

    /** Which of these digests the server lacks (ChunkedBlobService.HasChunks, one call). */
    private List<B3Digest> askHasChunks(List<B3Digest> digests) throws IOException {
        var request = HasChunksRequest.newBuilder();
        digests.forEach(d -> request.addDigests(d.toByteString()));
        try {
            var response = ClientCalls.blockingUnaryCall(connection.channel, ChunkedBlobServiceGrpc.getHasChunksMethod(),
                    connection.unaryOptions(), request.build());
            List<B3Digest> missing = new ArrayList<>(response.getMissingCount());
            for (var m : response.getMissingList()) {
                missing.add(B3Digest.of(m));
            }
            return missing;
        } catch (StatusRuntimeException e) {
            throw Failures.of(e, connection, "check " + digests.size() + " chunks");
        } catch (InvalidDataException e) {
            throw new CorruptedDataException("HasChunks answer from " + connection.address + ": " + e.getMessage());
        }
    }

    /**
     * From a castore daemon, MissingBlobs calls of up to {@value MessageLimit#DIGESTS_PER_REQUEST}
     * digests; from a tvix server (or a daemon from before MissingBlobs), Stats, 32 at once.
     */
    @Override
    public List<B3Digest> missing(List<B3Digest> digests) throws IOException {
        List<B3Digest> distinct = List.copyOf(new LinkedHashSet<>(digests));
        if (noMissingBlobs || !chunkedUploads()) {
            return BlobService.missingByHas(this, distinct, 32);
        }
        List<B3Digest> missing = new ArrayList<>();
        for (int from = 0; from < distinct.size(); from += MessageLimit.DIGESTS_PER_REQUEST) {
            List<B3Digest> batch = distinct.subList(from, Math.min(distinct.size(), from + MessageLimit.DIGESTS_PER_REQUEST));
            var ask = HasChunksRequest.newBuilder();
            batch.forEach(d -> ask.addDigests(d.toByteString()));
            HasChunksResponse answer;
            try {
                answer = ClientCalls.blockingUnaryCall(connection.channel, ChunkedBlobServiceGrpc.getMissingBlobsMethod(),
                        connection.unaryOptions(), ask.build());
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
                    noMissingBlobs = true;
                    return BlobService.missingByHas(this, distinct, 32);
                }
                throw Failures.of(e, connection, "ask which of " + batch.size() + " blobs are missing");
            }
            // Only digests asked about count: a server that names others is not believed for them.
            Set<B3Digest> asked = new HashSet<>(batch);
            try {
                for (var m : answer.getMissingList()) {
                    B3Digest digest = B3Digest.of(m);
                    if (asked.remove(digest)) {
                        missing.add(digest);
                    }
                }
            } catch (InvalidDataException e) {
                throw new CorruptedDataException("MissingBlobs answer from " + connection.address + ": " + e.getMessage());
            }
        }
        return missing;
    }

    /** Whether the server lacks MissingBlobs (a castore daemon from before session 35). */
    private volatile boolean noMissingBlobs;

    /** Whether the server has castore's ChunkedBlobService; a tvix server does not. */
    boolean chunkedUploads() throws IOException {
        return connection.castoreServer();
    }

    @Override
    public BlobWriter create() throws IOException {
        return chunkedUploads() ? new ChunkedUpload(connection, this, null) : new StreamedUpload(connection, this);
    }

    /** Asked for in one ReadBlobs call per {@value #READ_BLOBS_BATCH} blobs or 32 MiB. */
    static final int READ_BLOBS_BATCH = 1024;
    /** Whether the server lacks ReadBlobs (a castore daemon from before session 35). */
    private volatile boolean noReadBlobs;

    /**
     * From a castore daemon, in ReadBlobs calls, each blob hashed and its size checked here. One
     * the server leaves out or sends wrong is left out, as is everything when the server has no
     * ReadBlobs (a tvix server, an older daemon): the caller's own reads then fetch them as they
     * would have, in parallel, and report their errors with their paths. Reading them one by one
     * here would only serialise those reads on the caller's thread.
     */
    @Override
    public Map<B3Digest, byte[]> readBlobs(List<ChunkMeta> blobs) throws IOException {
        Map<B3Digest, byte[]> read = new HashMap<>();
        if (!noReadBlobs && chunkedUploads()) {
            int from = 0;
            while (from < blobs.size() && !noReadBlobs) {
                int to = from;
                long bytes = 0;
                while (to < blobs.size() && to - from < READ_BLOBS_BATCH && (to == from || bytes + blobs.get(to).size() <= MessageLimit.READ_BLOBS_BYTES)) {
                    bytes += blobs.get(to++).size();
                }
                readBatch(blobs.subList(from, to), bytes, read);
                from = to;
            }
        }
        return read;
    }

    private void readBatch(List<ChunkMeta> batch, long bytes, Map<B3Digest, byte[]> read) throws IOException {
        var request = ReadBlobsRequest.newBuilder();
        Map<B3Digest, Long> sizes = new HashMap<>();
        for (ChunkMeta blob : batch) {
            request.addBlobs(StatBlobResponse.ChunkMeta.newBuilder().setDigest(blob.digest().toByteString()).setSize(blob.size()));
            sizes.put(blob.digest(), blob.size());
        }
        // An idle timeout, not a deadline for the whole batch: a busy machine (a copy that writes
        // what it reads to S3 while the daemon and S3Proxy share its CPUs) took longer than the
        // store timeout plus 20 ns a byte for a batch of 8 MiB, and the copy failed although the
        // daemon was sending all along.
        try (var answers = InboundStream.open(connection, ChunkedBlobServiceGrpc.getReadBlobsMethod(), request.build(),
                "read " + batch.size() + " blobs")) {
            while (answers.hasNext()) {
                var answer = answers.next();
                // Nothing sent is trusted: a blob not asked for (or no digest at all), of another
                // size or of other bytes is dropped, and read the usual way after.
                if (answer.getDigest().size() != B3Digest.LENGTH) {
                    continue;
                }
                B3Digest digest = B3Digest.of(answer.getDigest());
                Long size = sizes.get(digest);
                byte[] data = answer.getData().toByteArray();
                if (size != null && data.length == size && Blake3.digest(data).equals(digest)) {
                    read.put(digest, data);
                }
            }
        } catch (UncheckedIOException e) {
            if (e.getCause().getCause() instanceof StatusRuntimeException s && s.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
                noReadBlobs = true;
                return;
            }
            throw e.getCause();
        }
    }

    /** Small blobs go in batches to a castore daemon (SmallBlobUploads); a tvix server gets them one by one. */
    @Override
    public BlobWriter createDeferred() throws IOException {
        return chunkedUploads() ? new ChunkedUpload(connection, this, smallUploads) : new StreamedUpload(connection, this);
    }

    @Override
    public long flushWrites() throws IOException {
        return smallUploads.flush();
    }

    /** The server's digest for an upload must be the one computed here. */
    static void checkStored(Connection connection, PutBlobResponse response, B3Digest sent) throws CorruptedDataException {
        B3Digest stored;
        try {
            stored = B3Digest.of(response.getDigest());
        } catch (InvalidDataException e) {
            throw new CorruptedDataException("upload to " + connection.address + ": bad digest in answer: " + e.getMessage());
        }
        if (!stored.equals(sent)) {
            throw new CorruptedDataException("upload to " + connection.address + ": server stored " + stored + ", we sent " + sent);
        }
    }
}
