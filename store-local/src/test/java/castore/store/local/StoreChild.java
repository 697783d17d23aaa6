package castore.store.local;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.model.Name;
import castore.service.BlobServiceContract;
import castore.service.BlobWriter;
import castore.service.Store;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;

/**
 * A second process for {@link MultiProcessTest}: opens the store given on the command line and
 * writes to it, printing one line per step so the test can act at the right moment.
 */
public final class StoreChild {
    private StoreChild() {
    }

    /** The blobs of import round {@code round}: deterministic, so the parent can check them. */
    static byte[] blob(int round, int i) {
        return BlobServiceContract.randomBytes(1000L * round + i, 1000 + (round * 7919 + i * 104729) % 600_000);
    }

    static final int BLOBS_PER_ROUND = 6;

    public static void main(String[] args) throws IOException {
        String mode = args[0];
        Path dir = Path.of(args[1]);
        PrintStream out = System.out;
        try (LocalStore local = LocalStore.open(dir, LocalStore.Options.defaults()); Store store = local.asStore()) {
            switch (mode) {
                case "import" -> {
                    Directory d = importRound(store, 1);
                    store.roots().put(Name.of("from-child"), d.toNode());
                    out.println("committed " + d.digest());
                    out.flush();
                    System.in.read(); // stay open until the parent has looked
                }
                case "hold-writer" -> {
                    try (BlobWriter w = store.blobs().create()) {
                        w.write(new byte[] {42}, 0, 1);
                        out.println("writing");
                        out.flush();
                        System.in.read();
                        w.finish();
                    }
                }
                case "import-forever" -> {
                    for (int round = 1; ; round++) {
                        Directory d = importRound(store, round);
                        store.roots().put(Name.of("round-" + round), d.toNode());
                        out.println("root " + round);
                        out.flush();
                    }
                }
                default -> throw new IllegalArgumentException(mode);
            }
        }
    }

    static Directory importRound(Store store, int round) throws IOException {
        Directory.Builder b = Directory.builder();
        for (int i = 0; i < BLOBS_PER_ROUND; i++) {
            byte[] data = blob(round, i);
            B3Digest digest;
            try (BlobWriter w = store.blobs().create()) {
                w.write(data, 0, data.length);
                digest = w.finish();
            }
            b.add("file-" + i, new FileNode(digest, data.length, false));
        }
        Directory d = b.build();
        store.directories().put(d);
        return d;
    }
}
