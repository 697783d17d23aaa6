package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.ListenAddress;
import castore.grpc.server.CastoreServer;
import castore.hash.Blake3;
import castore.model.Directory;
import castore.model.FileNode;
import castore.model.Name;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
}
