package castore.grpc.client;

import static org.assertj.core.api.Assertions.assertThat;

import castore.model.B3Digest;
import castore.service.ChunkMeta;
import java.util.List;
import org.junit.jupiter.api.Test;

class ArrayPoolTest {
    @Test
    void arraysAreExactUntilOneIsGivenBackThenOfTheHintedSizeAndReusedIfTheyFit() {
        var pool = new ArrayPool(100);
        byte[] first = pool.take(40);
        assertThat(first).hasSize(40);
        assertThat(pool.take(60)).hasSize(60); // nothing given back yet: exact sizes

        pool.give(first);
        assertThat(pool.take(50)).as("too small: a new array of the hinted size").hasSize(100);
        assertThat(pool.take(30)).as("the first that fits").isSameAs(first);
        assertThat(pool.take(150)).as("larger than the hint: its own size").hasSize(150);

        byte[] big = pool.take(10);
        pool.give(first);
        pool.give(big);
        assertThat(pool.take(80)).isSameAs(big); // passes over the one too small, which stays
        assertThat(pool.take(40)).isSameAs(first);

        pool.clear();
        pool.give(big);
        assertThat(pool.take(10)).as("nothing is kept once the stream has ended").isNotSameAs(big);
    }

    @Test
    void theArraySizeIsTheLargestChunkButAtMostTwiceTheAverage() {
        B3Digest d = B3Digest.of(new byte[32]);
        assertThat(BlobStream.arraySize(List.of(new ChunkMeta(d, 300), new ChunkMeta(d, 500), new ChunkMeta(d, 400)))).isEqualTo(500);
        // One huge chunk among small ones: arrays stay near the small ones' size.
        assertThat(BlobStream.arraySize(List.of(new ChunkMeta(d, 100), new ChunkMeta(d, 100), new ChunkMeta(d, 100),
                new ChunkMeta(d, 10_000)))).isEqualTo(5_150);
        assertThat(BlobStream.arraySize(List.of())).isZero();
    }
}
