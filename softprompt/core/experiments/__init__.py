"""The paper's comparisons: prompt design, method × model-size grids, domain transfer; may import every other core room and tasks."""
