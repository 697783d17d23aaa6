package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.ListenAddress;
import castore.grpc.server.CastoreServer;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.model.Name;
import castore.s3.S3ProxyServer;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.core.sync.RequestBody;

/**
 * verify over a daemon, which has no whole-store check of its own: what the roots reach is read
 * through the client and re-hashed, small blobs in groups (one ReadBlobs each), the rest on
 * their own. A blob the daemon lacks or serves corrupted is one problem naming its path, and the
 * others still verify.
 */
class RemoteVerifyTest {
    @TempDir
    Path tmp;

    @Test
    void aMissingAndACorruptedBlobAreReportedByPathAndEverythingElseVerifies() throws Exception {
        Path storeDir = tmp.resolve("store");
        Path tree = tmp.resolve("tree");
        Files.createDirectories(tree.resolve("sub"));
        SplittableRandom random = new SplittableRandom(44);
        // 600 small files: several groups of GROUP_BLOBS; one big file of several chunks, read on its own.
        for (int i = 0; i < 600; i++) {
            byte[] data = new byte[100 + random.nextInt(8000)];
            random.nextBytes(data);
            Files.write(tree.resolve((i % 2 == 0 ? "" : "sub/") + "s" + i), data);
        }
        byte[] big = new byte[3 << 20];
        random.nextBytes(big);
        Files.write(tree.resolve("big.bin"), big);
        byte[] victim = Files.readAllBytes(tree.resolve("sub/s301"));
        Cli local = new Cli(storeDir.toString());
        assertThat(local.run("import", "--quiet", tree.toString()).exit()).isZero();

        byte[] ghost = "a blob never stored".getBytes(StandardCharsets.UTF_8);
        try (Store s = Stores.open(storeDir.toString(), StoreOptions.DEFAULT)) {
            Directory broken = Directory.builder().add("ghost", new FileNode(Blake3.digest(ghost), ghost.length, false)).build();
            s.directories().put(broken);
            s.roots().put(Name.of("broken"), broken.toNode());
        }
        assertThat(local.run("verify").exit()).as("the local store's own check: the ghost is missing").isEqualTo(ExitCodes.PROBLEMS);
        StoredCopies.corrupt(storeDir, victim, 0);

        try (Store served = Stores.open(storeDir.toString(), StoreOptions.DEFAULT);
                CastoreServer server = CastoreServer.start(served, new CastoreServer.Config(new ListenAddress.Tcp("127.0.0.1", 0), true))) {
            String address = "grpc+http://127.0.0.1:" + ((ListenAddress.Tcp) server.address()).port();
            Cli.Result verify = new Cli(address).run("verify");

            assertThat(verify.exit()).as(verify.stderr()).isEqualTo(ExitCodes.PROBLEMS);
            assertThat(verify.lines()).hasSize(2);
            assertThat(verify.lines()).anySatisfy(l -> assertThat(l)
                    .isEqualTo("blob " + Blake3.digest(ghost) + " is missing (broken/ghost)"));
            assertThat(verify.lines()).anySatisfy(l -> assertThat(l)
                    .startsWith("blob " + Blake3.digest(victim) + " (tree/sub/s301): "));
            assertThat(verify.stderr()).startsWith("verified 2 roots: 3 directories, 602 blobs").contains("; 2 problems, in ");
        }
    }

    /**
     * verify and gc over S3. The store's own check re-hashes every object; the walk of what the
     * roots reach then fetches Directories many at once and asks nothing more about the blobs that
     * check found sound. A file whose entry gives another size than its blob has is still reported
     * by both, by path from the walk, and so is a Directory a root reaches that is not stored; gc
     * refuses to sweep past that one, and deletes nothing.
     */
    @Test
    void overS3WrongSizesAndAMissingDirectoryAreReportedByPathAndGcStops() throws Exception {
        Path tree = tmp.resolve("tree");
        SplittableRandom random = new SplittableRandom(45);
        for (int d = 0; d < 40; d++) { // Directories enough for the walk to fetch many at once
            Files.createDirectories(tree.resolve("d" + d));
            for (int f = 0; f < 3; f++) {
                byte[] data = new byte[100 + random.nextInt(2000)];
                random.nextBytes(data);
                Files.write(tree.resolve("d" + d).resolve("f" + f), data);
            }
        }
        byte[] big = new byte[1 << 20]; // several chunks
        random.nextBytes(big);
        Files.write(tree.resolve("big.bin"), big);
        byte[] small = Files.readAllBytes(tree.resolve("d7/f1"));
        B3Digest bigDigest = Blake3.digest(big);
        B3Digest smallDigest = Blake3.digest(small);
        try (S3ProxyServer s3 = S3ProxyServer.start(tmp.resolve("s3"))) {
            s3.createBucket("verified");
            String bucket = s3.address("verified", "store");
            Cli cli = new Cli(bucket);
            Cli.Result imported = cli.run("import", "--quiet", tree.toString());
            assertThat(imported.exit()).as(imported.stderr()).isZero();
            Cli.Result clean = cli.run("verify");
            assertThat(clean.exit()).as(clean.stderr()).isZero();
            assertThat(clean.stderr()).startsWith("verified 1 root: 41 directories, 121 blobs (");

            Directory neverStored = Directory.builder().add("x", new FileNode(smallDigest, small.length, false)).build();
            Directory odd = Directory.builder()
                    .add("big", new FileNode(bigDigest, big.length + 1, false))
                    .add("gone", neverStored.toNode())
                    .add("small", new FileNode(smallDigest, small.length - 1, false))
                    .build();
            String hex = odd.digest().toHex(); // past put's closure check, as a lost object leaves it (docs/s3.md's layout)
            try (var client = s3.client()) {
                client.putObject(b -> b.bucket("verified").key("store/directories/" + hex.substring(0, 2) + "/" + hex),
                        RequestBody.fromBytes(odd.encode()));
            }
            try (Store s = Stores.open(bucket, StoreOptions.DEFAULT)) {
                s.roots().put(Name.of("odd"), odd.toNode());
            }

            Cli.Result verify = cli.run("verify");
            assertThat(verify.exit()).as(verify.stderr()).isEqualTo(ExitCodes.PROBLEMS);
            String entry = "directory " + odd.digest() + " entry ";
            assertThat(verify.lines()).containsExactlyInAnyOrder(
                    entry + "'big': blob " + bigDigest + " is " + big.length + " bytes but the entry says " + (big.length + 1),
                    entry + "'gone': directory " + neverStored.digest() + " missing or corrupted",
                    entry + "'small': blob " + smallDigest + " is " + small.length + " bytes but the entry says " + (small.length - 1),
                    "directory " + neverStored.digest() + " is missing (odd/gone)",
                    "blob " + bigDigest + " has chunks adding up to " + big.length + " bytes but the file is " + (big.length + 1)
                            + " bytes (odd/big)",
                    "blob " + smallDigest + " has chunks adding up to " + small.length + " bytes but the file is " + (small.length - 1)
                            + " bytes (odd/small)");

            Cli.Result gc = cli.run("gc");
            assertThat(gc.exit()).as(gc.stderr()).isEqualTo(ExitCodes.IO);
            assertThat(gc.stderr()).contains("cannot collect garbage: directory " + neverStored.digest() + " is missing (odd/gone)");
            Path out = tmp.resolve("out");
            Cli.Result exported = cli.run("export", "--quiet", "tree", out.toString());
            assertThat(exported.exit()).as(exported.stderr()).isZero();
            assertThat(Files.readAllBytes(out.resolve("big.bin"))).isEqualTo(big);
            assertThat(cli.run("verify").lines()).hasSize(6);
        }
    }
}
