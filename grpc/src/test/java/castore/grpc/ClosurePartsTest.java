package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.proto.DirectoryPartServiceGrpc;
import castore.grpc.proto.PartLimitRequest;
import castore.grpc.server.TestServices;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.SymlinkNode;
import castore.service.ClosurePutter;
import castore.service.ForwardingDirectoryService;
import castore.service.Store;
import castore.service.Stores;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DirectoryPartService: a closure larger than the daemon holds at once goes through in parts,
 * each checked as a closure Put is and stored on its own; what a daemon without it gets is one Put.
 */
class ClosurePartsTest {
    /** The daemon's limit in these tests (castore daemon --max-closure): far below the closures put. */
    private static final long LIMIT = 64 << 10;

    @TempDir
    Path dir;

    /** The daemon's backing directories, counting the closures it stores: one per Put or part. */
    private static final class CountingDirectories extends ForwardingDirectoryService {
        final MemoryDirectoryService memory;
        final AtomicInteger closures = new AtomicInteger();

        CountingDirectories() {
            this(new MemoryDirectoryService());
        }

        private CountingDirectories(MemoryDirectoryService memory) {
            super(memory);
            this.memory = memory;
        }

        @Override
        public ClosurePutter putClosure() {
            closures.incrementAndGet();
            return super.putClosure();
        }
    }

    /** {@code count} leaves of 40 files each (about 2.3 KiB encoded apiece) and a root naming them all. */
    private static List<Directory> wideClosure(int count) {
        List<Directory> closure = new ArrayList<>();
        var root = Directory.builder();
        for (int i = 0; i < count; i++) {
            var leaf = Directory.builder();
            for (int f = 0; f < 40; f++) {
                leaf.add("file-" + f + "-of-leaf-" + i, new FileNode(Blake3.digest(("content " + i + "/" + f).getBytes()), 9 + f, false));
            }
            Directory d = leaf.build();
            closure.add(d);
            root.add("leaf-" + i, d.toNode());
        }
        closure.add(root.build());
        return closure;
    }

    private static long encodedBytes(List<Directory> closure) {
        return closure.stream().mapToLong(d -> d.encode().length).sum();
    }

    private TestServer server(CountingDirectories directories) throws IOException {
        return TestServer.start(TestServer.Transport.TCP, dir,
                new Store(new MemoryBlobService(), directories, new MemoryRootService()), false, LIMIT);
    }

    @Test
    void aClosureLargerThanTheDaemonHoldsGoesInPartsEachStoredOnItsOwn() throws Exception {
        var directories = new CountingDirectories();
        List<Directory> closure = wideClosure(100);
        assertThat(encodedBytes(closure)).isGreaterThan(3 * LIMIT);
        try (TestServer server = server(directories)) {
            assertThat(DirectoryPartServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .partLimit(PartLimitRequest.getDefaultInstance()).getMaxBytes()).isEqualTo(LIMIT);
            // As tvix's Put, whole: refused, naming the limit and the way out; nothing stored.
            Status whole = putWhole(server, closure);
            assertThat(whole.getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
            assertThat(whole.getDescription()).isEqualTo("Directory closure larger than " + LIMIT
                    + " bytes; put it in parts (DirectoryPartService, or subtrees first)");
            assertThat(directories.memory.count()).isZero();

            // castore's client cuts it into parts of at most the daemon's limit.
            try (ClosurePutter putter = server.client().directories().putClosure()) {
                for (Directory d : closure) {
                    putter.put(d);
                }
                assertThat(putter.finish()).isEqualTo(closure.getLast().digest());
            }
            assertThat(directories.closures.get()).isBetween((int) (encodedBytes(closure) / LIMIT) + 1, closure.size() / 10);
            assertThat(directories.memory.count()).isEqualTo(closure.size());
            assertThat(server.client().directories().getRecursive(closure.getLast().digest()).count()).isEqualTo(closure.size());
        }
    }

    @Test
    void aClosureGivenUpPartWayKeepsTheAnsweredPartsAndCanBePutAgain() throws Exception {
        var directories = new CountingDirectories();
        List<Directory> closure = wideClosure(100);
        try (TestServer server = server(directories)) {
            try (ClosurePutter putter = server.client().directories().putClosure()) {
                for (Directory d : closure.subList(0, 50)) { // past the first part's end: it is stored
                    putter.put(d);
                }
            } // abandoned: the part in flight is cancelled
            int stored = directories.memory.count();
            assertThat(stored).isPositive().isLessThan(50);
            assertThat(directories.memory.has(closure.getLast().digest())).isFalse();
            for (Directory d : closure.subList(0, stored)) {
                assertThat(directories.memory.has(d.digest())).as("the parts answered are the first ones").isTrue();
            }
            // Put again, whole: the stored leaves are accepted as stored children.
            try (ClosurePutter putter = server.client().directories().putClosure()) {
                for (Directory d : closure) {
                    putter.put(d);
                }
                assertThat(putter.finish()).isEqualTo(closure.getLast().digest());
            }
            assertThat(directories.memory.count()).isEqualTo(closure.size());
        }
    }

    @Test
    void aPartIsCheckedAsAClosureIsExceptThatItsLastNeedNotReachTheRest() throws Exception {
        var directories = new CountingDirectories();
        Directory leaf = Directory.builder().add("f", new FileNode(Blake3.digest(new byte[0]), 0, false)).build();
        Directory other = Directory.builder().add("x", SymlinkNode.of("y")).build();
        Directory parent = Directory.builder().add("leaf", leaf.toNode()).add("other", other.toNode()).build();
        try (TestServer server = server(directories)) {
            assertRejected(server, directories, List.of(parent), Status.Code.INVALID_ARGUMENT, "neither sent before it nor is stored");
            Directory wrongSize = Directory.builder().add("leaf", new DirectoryNode(leaf.digest(), 7)).build();
            assertRejected(server, directories, List.of(leaf, wrongSize), Status.Code.INVALID_ARGUMENT, "has size 7, but it has size 1");
            assertRejected(server, directories, List.of(), Status.Code.INVALID_ARGUMENT, "empty Directory closure part");
            var unsorted = castore.proto.Directory.newBuilder()
                    .addSymlinks(castore.proto.SymlinkNode.newBuilder().setName(com.google.protobuf.ByteString.copyFromUtf8("b"))
                            .setTarget(com.google.protobuf.ByteString.copyFromUtf8("t")))
                    .addSymlinks(castore.proto.SymlinkNode.newBuilder().setName(com.google.protobuf.ByteString.copyFromUtf8("a"))
                            .setTarget(com.google.protobuf.ByteString.copyFromUtf8("t")))
                    .build();
            assertRejectedRaw(server, directories, List.of(leaf.toProto(), unsorted), Status.Code.INVALID_ARGUMENT, "not sorted");
            List<Directory> big = wideClosure(30).subList(0, 30);
            assertRejected(server, directories, big, Status.Code.RESOURCE_EXHAUSTED, "Directory closure part larger than " + LIMIT + " bytes");

            // Two leaves that nothing in the part names: stored, the answer is the last one.
            assertThat(putPart(server, List.of(leaf.toProto(), other.toProto()))).isEqualTo(Status.OK);
            assertThat(directories.memory.count()).isEqualTo(2);
            // Their parent alone, in a part of its own: its children are stored.
            assertThat(putPart(server, List.of(parent.toProto()))).isEqualTo(Status.OK);
            assertThat(directories.memory.has(parent.digest())).isTrue();
        }
    }

    @Test
    void aReadOnlyDaemonRefusesParts() throws Exception {
        Directory leaf = Directory.builder().add("l", SymlinkNode.of("t")).build();
        try (TestServer server = TestServer.start(TestServer.Transport.TCP, dir, TestServer.memoryStore(), true, LIMIT)) {
            Status status = putPart(server, List.of(leaf.toProto()));
            assertThat(status.getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
            assertThat(server.backing.directories().has(leaf.digest())).isFalse();
        }
    }

    /** A server without DirectoryPartService (tvix, an older castore daemon) gets the closure in one Put. */
    @Test
    void aServerWithoutPartsGetsOnePut() throws Exception {
        var directories = new CountingDirectories();
        List<Directory> closure = wideClosure(100);
        try (var server = FakeServer.start(TestServices.directories(directories));
                Store client = Stores.open(server.address(), TestServer.CLIENT_OPTIONS)) {
            try (ClosurePutter putter = client.directories().putClosure()) {
                for (Directory d : closure) {
                    putter.put(d);
                }
                assertThat(putter.finish()).isEqualTo(closure.getLast().digest());
            }
            assertThat(directories.closures.get()).isEqualTo(1);
            assertThat(directories.memory.count()).isEqualTo(closure.size());
        }
    }

    @Test
    void aDirectoryLargerThanTheDaemonsLimitIsRefusedNamingIt() throws Exception {
        var huge = Directory.builder();
        for (int f = 0; f < 2000; f++) {
            huge.add("f" + f, new FileNode(Blake3.digest(new byte[] {(byte) f, (byte) (f >> 8)}), 2, false));
        }
        Directory d = huge.build();
        try (TestServer server = server(new CountingDirectories()); ClosurePutter putter = server.client().directories().putClosure()) {
            assertThatThrownBy(() -> putter.put(d)).isInstanceOf(castore.model.InvalidDataException.class)
                    .hasMessage("a directory of 2000 entries (" + d.digest() + ") is " + d.encode().length + " bytes encoded, over the "
                            + LIMIT + " bytes " + server.clientAddress() + " takes of a closure at once (castore daemon --max-closure)");
        }
    }

    private static Status putWhole(TestServer server, List<Directory> closure) throws Exception {
        var done = new CompletableFuture<Status>();
        StreamObserver<castore.proto.Directory> requests = castore.grpc.proto.DirectoryServiceGrpc.newStub(server.raw())
                .withDeadlineAfter(10, TimeUnit.SECONDS).put(MalformedRequestTest.ending(done));
        closure.forEach(d -> requests.onNext(d.toProto()));
        requests.onCompleted();
        return done.get(10, TimeUnit.SECONDS);
    }

    private static Status putPart(TestServer server, List<castore.proto.Directory> part) throws Exception {
        var done = new CompletableFuture<Status>();
        StreamObserver<castore.proto.Directory> requests = DirectoryPartServiceGrpc.newStub(server.raw())
                .withDeadlineAfter(10, TimeUnit.SECONDS).putPart(MalformedRequestTest.ending(done));
        part.forEach(requests::onNext);
        requests.onCompleted();
        return done.get(10, TimeUnit.SECONDS);
    }

    private static void assertRejected(TestServer server, CountingDirectories directories, List<Directory> part, Status.Code code,
                                       String message) throws Exception {
        assertRejectedRaw(server, directories, part.stream().map(Directory::toProto).toList(), code, message);
    }

    private static void assertRejectedRaw(TestServer server, CountingDirectories directories, List<castore.proto.Directory> part,
                                          Status.Code code, String message) throws Exception {
        Status status = putPart(server, part);
        assertThat(status.getCode()).isEqualTo(code);
        assertThat(status.getDescription()).contains(message);
        assertThat(directories.memory.count()).as("nothing of a rejected part is stored").isZero();
    }
}
