package io.modelmon.functions;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * An aggregate whose accumulator is a {@link Histogram} and whose value is its text: what {@link BinStats} and
 * {@link MergeBins} share. Subclasses add {@code accumulate} (and {@code retract}) for their inputs.
 */
@FunctionHint(
        accumulator = @DataTypeHint(value = "RAW", bridgedTo = Histogram.class),
        output = @DataTypeHint("STRING"))
public abstract class HistogramAggregate extends AggregateFunction<String, Histogram> {

    @Override
    public Histogram createAccumulator() {
        return new Histogram();
    }

    public void merge(Histogram acc, Iterable<Histogram> others) {
        for (Histogram other : others) {
            acc.addAll(other);
        }
    }

    public void resetAccumulator(Histogram acc) {
        acc.clear();
    }

    @Override
    public String getValue(Histogram acc) {
        return acc.toText();
    }
}
