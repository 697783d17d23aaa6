package castore.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Scratch buffers for O_DIRECT reads on the caller's thread: aligned, bounded in number, reused. */
class DirectReadsScratchTest {
    @Test
    void scratchBuffersAreAlignedBoundedAndReused() {
        DirectReads reads = new DirectReads("scratch-test");
        List<MemorySegment> taken = new ArrayList<>();
        for (int i = 0; i < DirectReads.MAX_SCRATCH; i++) {
            MemorySegment buffer = reads.takeScratch();
            assertThat(buffer).isNotNull();
            assertThat(buffer.byteSize()).isEqualTo(DirectReads.SCRATCH_BYTES);
            assertThat(buffer.address() % DirectStream.ALIGN).isZero();
            taken.add(buffer);
        }
        assertThat(reads.takeScratch()).as("all in use: the caller reads through the page cache").isNull();
        reads.giveBack(taken.getFirst());
        assertThat(reads.takeScratch()).as("the one given back").isSameAs(taken.getFirst());
        assertThat(reads.takeScratch()).isNull();
    }
}
