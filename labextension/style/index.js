import './base.css';
import './compare.css';
import './launch.css';
