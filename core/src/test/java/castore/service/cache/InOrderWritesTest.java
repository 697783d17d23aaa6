package castore.service.cache;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class InOrderWritesTest {
    final InOrderWrites writes = new InOrderWrites();
    final List<String> disk = new ArrayList<>();

    Runnable write(String what) {
        return () -> disk.add(what);
    }

    @Test
    void aChunkWaitsOnlyForLowerFetchesOfItsOwnLane() {
        writes.expect(1, 0);
        writes.expect(2, 0);
        writes.expect(3, 1);
        writes.expect(4, 0);
        assertThat(writes.fetched(4, 0, write("4"))).isFalse();
        assertThat(writes.fetched(3, 1, write("3"))).isFalse(); // lane 1 waits for nothing
        assertThat(writes.fetched(2, 0, write("2"))).isFalse();
        assertThat(disk).containsExactly("3");
        assertThat(writes.heldBack()).isEqualTo(2);
        assertThat(writes.fetched(1, 0, write("1"))).as("2 and 4 were held back").isTrue();
        assertThat(disk).containsExactly("3", "1", "2", "4");
        assertThat(writes.heldBack()).isZero();
    }

    @Test
    void aReusedArraysWriteRunsAtOnceOrHoldsACopy() {
        List<String> copied = new ArrayList<>();
        writes.expect(1, 0);
        // Nothing before it in lane 1: the write of the array itself, now; no copy made.
        assertThat(writes.fetchedReusing(2, 1, write("2"), () -> {
            copied.add("2");
            return write("copy of 2");
        })).isFalse();
        assertThat(disk).containsExactly("2");
        // Chunk 1 of lane 0 is still expected: chunk 3 waits, as a copy (the caller reuses its array).
        assertThat(writes.fetchedReusing(3, 0, write("3"), () -> {
            copied.add("3");
            return write("copy of 3");
        })).isFalse();
        assertThat(copied).containsExactly("3");
        assertThat(writes.fetched(1, 0, write("1"))).isTrue();
        assertThat(disk).containsExactly("2", "1", "copy of 3");
    }

    @Test
    void manyChunksOfTwoLanesHeldAtOnceAreEachWrittenOnceInOrderWhenTheirLaneGoesOn() {
        // Lane 1: the even indices, behind 0; lane 2: the odd ones, behind 1. Releasing one lane
        // takes entries out of the middle of what is held.
        List<Integer> order = new ArrayList<>();
        for (int i = 2; i < 402; i++) {
            order.add(i);
        }
        java.util.Collections.shuffle(order, new java.util.Random(7));
        writes.expect(0, 1);
        writes.expect(1, 2);
        for (int i : order) {
            writes.fetched(i, 1 + i % 2, write(Integer.toString(i)));
        }
        assertThat(disk).isEmpty();
        assertThat(writes.heldBack()).isEqualTo(400);
        writes.fetched(1, 2, write("1"));
        assertThat(disk).containsExactlyElementsOf(java.util.stream.IntStream.range(0, 201).map(i -> 2 * i + 1).mapToObj(Integer::toString).toList());
        disk.clear();
        writes.fetched(0, 1, write("0"));
        assertThat(disk).containsExactlyElementsOf(java.util.stream.IntStream.range(0, 201).map(i -> 2 * i).mapToObj(Integer::toString).toList());
        assertThat(writes.heldBack()).isZero();
    }

    @Test
    void aDroppedFetchLetsTheChunksBehindItGo() {
        writes.expect(5, 2);
        writes.expect(6, 2);
        writes.fetched(6, 2, write("6"));
        assertThat(disk).isEmpty();
        assertThat(writes.dropped(5)).isTrue();
        assertThat(disk).containsExactly("6");
        assertThat(writes.dropped(5)).as("dropped once").isFalse();
    }

    @Test
    void aChunkNobodyExpectedIsWrittenAtOnceUnlessALowerFetchOfItsLaneIsUnderWay() {
        assertThat(writes.fetched(9, 0, write("9"))).isFalse();
        assertThat(disk).containsExactly("9");
        assertThat(writes.expectedLane(10, 3)).isEqualTo(3);
        assertThat(writes.expectedLane(10, 0)).as("the lane it was first expected in").isEqualTo(3);
        writes.fetched(11, 3, write("11"));
        writes.fetched(12, 0, write("12"));
        assertThat(disk).containsExactly("9", "12");
        writes.fetched(10, 3, write("10"));
        assertThat(disk).containsExactly("9", "12", "10", "11");
    }
}
