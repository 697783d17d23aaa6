package castore.grpc;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.PutBlobResponse;
import castore.grpc.proto.ReadBlobRequest;
import castore.grpc.proto.StatBlobRequest;
import castore.grpc.proto.StatBlobResponse;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** A tvix BlobService that answers whatever a test put in its maps: lying, breaking or stalling servers. */
final class FakeBlobService extends BlobServiceGrpc.BlobServiceImplBase {
    /** Stat answers by digest; absent: NOT_FOUND. */
    final Map<ByteString, StatBlobResponse> stats = new ConcurrentHashMap<>();
    /** The messages Read sends, by digest (chunks and blobs alike); absent: NOT_FOUND. */
    final Map<ByteString, List<ByteString>> reads = new ConcurrentHashMap<>();
    /** Digests whose Read sends its messages and then nothing, without ending. */
    final Set<ByteString> stalls = ConcurrentHashMap.newKeySet();
    /** Reads of digests Stat does not know (chunks). */
    final AtomicInteger chunkReads = new AtomicInteger();
    /** The digest Put answers, whatever was sent. */
    volatile ByteString putAnswer = ByteString.EMPTY;

    @Override
    public void stat(StatBlobRequest request, StreamObserver<StatBlobResponse> responses) {
        StatBlobResponse answer = stats.get(request.getDigest());
        if (answer == null) {
            responses.onError(Status.NOT_FOUND.asRuntimeException());
            return;
        }
        responses.onNext(answer);
        responses.onCompleted();
    }

    @Override
    public void read(ReadBlobRequest request, StreamObserver<BlobChunk> responses) {
        if (!stats.containsKey(request.getDigest())) {
            chunkReads.incrementAndGet();
        }
        List<ByteString> answer = reads.get(request.getDigest());
        if (answer == null) {
            responses.onError(Status.NOT_FOUND.asRuntimeException());
            return;
        }
        answer.forEach(d -> responses.onNext(BlobChunk.newBuilder().setData(d).build()));
        if (!stalls.contains(request.getDigest())) {
            responses.onCompleted();
        }
    }

    @Override
    public StreamObserver<BlobChunk> put(StreamObserver<PutBlobResponse> responses) {
        return new StreamObserver<>() {
            @Override
            public void onNext(BlobChunk value) {
            }

            @Override
            public void onError(Throwable t) {
            }

            @Override
            public void onCompleted() {
                responses.onNext(PutBlobResponse.newBuilder().setDigest(putAnswer).build());
                responses.onCompleted();
            }
        };
    }
}
