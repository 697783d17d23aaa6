package castore.grpc.server;

import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.proto.PutDirectoryResponse;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.service.memory.MemoryDirectoryService;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What all closure puts being checked may hold at once (three fifths of the daemon's heap): a put past
 * it is refused with RESOURCE_EXHAUSTED and stores nothing, and every put gives its bytes back
 * once it is stored, refused or abandoned, so that the next one fits.
 */
class ClosureBudgetTest {
    private final MemoryDirectoryService directories = new MemoryDirectoryService();

    /** A closure of {@code leaves} leaf Directories (a file each) and a root holding them all, leaves first. */
    private static List<castore.proto.Directory> closure(String tag, int leaves) {
        List<castore.proto.Directory> messages = new ArrayList<>();
        var root = Directory.builder();
        for (int i = 0; i < leaves; i++) {
            byte[] seed = (tag + i).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            Directory leaf = Directory.builder().add("file-" + tag + "-" + i, new FileNode(B3Digest.of(pad(seed)), i, false)).build();
            messages.add(leaf.toProto());
            root.add("dir" + i, leaf.toNode());
        }
        messages.add(root.build().toProto());
        return messages;
    }

    private static byte[] pad(byte[] seed) {
        return java.util.Arrays.copyOf(seed, 32);
    }

    private static long bytes(List<castore.proto.Directory> messages) {
        return messages.stream().mapToLong(castore.proto.Directory::getSerializedSize).sum();
    }

    /** The answer a put's caller gets. */
    private static final class Answer implements StreamObserver<PutDirectoryResponse> {
        PutDirectoryResponse response;
        Throwable error;
        boolean completed;

        @Override
        public void onNext(PutDirectoryResponse value) {
            response = value;
        }

        @Override
        public void onError(Throwable t) {
            error = t;
        }

        @Override
        public void onCompleted() {
            completed = true;
        }
    }

    private StreamObserver<castore.proto.Directory> put(ClosureBudget budget, Answer answer) {
        return DirectoryServiceImpl.receiving(new ClosureValidator(directories, 1L << 30, budget), answer);
    }

    @Test
    void aPutPastWhatOthersHoldIsRefusedAndFitsOnceTheyAreDone() {
        var first = closure("a", 20);
        var second = closure("b", 20);
        var budget = new ClosureBudget(bytes(first) + bytes(second) / 2);

        Answer firstAnswer = new Answer();
        var firstPut = put(budget, firstAnswer);
        first.forEach(firstPut::onNext); // received, not yet completed: held
        assertThat(budget.held()).isEqualTo(bytes(first));

        Answer refused = new Answer();
        var secondPut = put(budget, refused);
        second.forEach(secondPut::onNext);
        secondPut.onCompleted();
        assertThat(Status.fromThrowable(refused.error).getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
        assertThat(Status.fromThrowable(refused.error).getDescription()).isEqualTo("the closures being checked would hold more than "
                + budget.limit() + " bytes (three fifths of the daemon's heap); put it again later, or in smaller parts");
        assertThat(refused.response).isNull();
        assertThat(budget.held()).as("the refused put gave its part back").isEqualTo(bytes(first));
        assertThat(directories.get(Directory.fromProto(second.getLast()).digest())).isEmpty();

        firstPut.onCompleted();
        assertThat(firstAnswer.completed).isTrue();
        assertThat(firstAnswer.error).isNull();
        assertThat(budget.held()).as("a stored closure gives its bytes back").isZero();

        Answer again = new Answer();
        var secondAgain = put(budget, again);
        second.forEach(secondAgain::onNext);
        secondAgain.onCompleted();
        assertThat(again.error).isNull();
        assertThat(again.completed).isTrue();
        assertThat(directories.get(Directory.fromProto(second.getLast()).digest())).isPresent();
        assertThat(budget.held()).isZero();
    }

    @Test
    void anAbandonedOrInvalidPutGivesItsBytesBack() {
        var budget = new ClosureBudget(1L << 20);
        var abandoned = closure("c", 10);
        Answer answer = new Answer();
        var put = put(budget, answer);
        abandoned.forEach(put::onNext);
        assertThat(budget.held()).isEqualTo(bytes(abandoned));
        put.onError(Status.CANCELLED.asRuntimeException()); // the client went away
        assertThat(budget.held()).isZero();

        // The root alone: its children were neither sent nor stored.
        Answer invalid = new Answer();
        var rootOnly = put(budget, invalid);
        rootOnly.onNext(closure("d", 3).getLast());
        assertThat(Status.fromThrowable(invalid.error).getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
        rootOnly.onCompleted();
        assertThat(budget.held()).isZero();
    }

    @Test
    void theBudgetIsThreeFifthsOfTheHeap() {
        // A 1 GiB host's default heap: one closure of 128 MiB fits (DaemonProcessTest), two do not.
        assertThat(ClosureBudget.limitFor(256L << 20)).isEqualTo(161_061_273L).isGreaterThan(129L << 20).isLessThan(256L << 20);
        assertThat(ClosureBudget.ofHeap().limit()).isEqualTo(Runtime.getRuntime().maxMemory() / 5 * 3);
    }
}
